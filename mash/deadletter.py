"""Dead letters: what could not be processed, kept whole, with the reason beside it.

Connectors and hub stages build them the same way, so an operator reads one format. The reason
travels both in the Avro record and in message headers (readable with kcat without a decoder).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mash.codec import Codec

SCHEMA = "uk.mash.hub.DeadLetter"
MAX_REASON_CHARS = 2000  # an error quoting a huge hostile value must not make a huge header
MAX_ORIGINAL_BYTES = 900_000  # with the rest of the record, under the broker's message size


@dataclass(frozen=True)
class Origin:
    """Where the failed input came from: a Kafka position, a source position, or both."""

    stage: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    position: str | None = None


def build(original: bytes, origin: Origin, error: BaseException, codec: Codec) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The dead-letter message value and headers for `original`, which failed with `error`."""
    error_class = type(error).__name__
    message = str(error)[:MAX_REASON_CHARS]
    original = bytes(original)
    record = {
        "original": original[:MAX_ORIGINAL_BYTES],
        "original_size": len(original),
        "original_truncated": len(original) > MAX_ORIGINAL_BYTES,
        "original_key": origin.key,
        "original_topic": origin.topic,
        "original_partition": origin.partition,
        "original_offset": origin.offset,
        "stage": origin.stage,
        "source_position": origin.position,
        "error_class": error_class,
        "error_message": message,
        "failed_at": datetime.now(UTC),
    }
    headers = [
        ("mash.dlq.stage", origin.stage.encode()),
        ("mash.dlq.error_class", error_class.encode()),
        ("mash.dlq.error_message", message.encode("utf-8", "replace")),
    ]
    if origin.position:
        headers.append(("mash.dlq.source_position", origin.position.encode("utf-8", "replace")))
    if origin.topic:
        headers.append(("mash.dlq.original_topic", origin.topic.encode()))
    if len(original) > MAX_ORIGINAL_BYTES:
        headers.append(("mash.dlq.original_truncated", str(len(original)).encode()))
    return codec.encode(record, SCHEMA), headers
