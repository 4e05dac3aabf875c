"""Runs a connector over a source file: map, encode, key, produce; dead-letter what fails.

Every record read ends in exactly one place: its agency's inbound topic or the dead-letter
topic, and the run's report counts both, so `read == produced + dead_lettered` always holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer

from connectors.sdk.contract import Connector
from connectors.sdk.sources import SourceRecord, read_records
from mash import deadletter
from mash.codec import Codec
from mash.settings import Settings
from mash.topics import DEADLETTER, topic_name

DELIVERY_TIMEOUT_S = 60.0
CONFIRM_EVERY = 1000  # wait for delivery of this many sends before reading on


@dataclass
class RunReport:
    connector: str
    read: int = 0
    produced: int = 0
    dead_lettered: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "read": self.read, "produced": self.produced,
                "dead_lettered": self.dead_lettered, "errors": dict(self.errors)}


@dataclass(frozen=True)
class Outcome:
    """The fate of one source record before it is sent: an event, or a dead letter."""

    record: SourceRecord
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    error: Exception | None


def make_producer(bootstrap: str) -> KafkaProducer:
    """Durable, ordered, idempotent: acks from every in-sync replica and no duplicate on retry."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
        client_id="mash-connector",
    )


def prepare(connector: Connector, records: Iterator[SourceRecord], codec: Codec) -> Iterator[Outcome]:
    """Turn each source record into the message to send; the pure half of a run."""
    stage = f"connector:{connector.name}"
    for record in records:
        try:
            if record.error is not None:
                raise record.error
            assert record.fields is not None
            event = connector.to_event(connector.map(record.fields))
            value = codec.encode(event, connector.schema)
        except Exception as exc:  # noqa: BLE001 - any failure of one record dead-letters it
            origin = deadletter.Origin(stage=stage, position=record.position)
            dl_value, headers = deadletter.build(record.raw, origin, exc, codec)
            yield Outcome(record, None, dl_value, headers, exc)
            continue
        key = event["envelope"]["subject"]["local_id"].encode()
        yield Outcome(record, key, value, [], None)


def run(
    connector: Connector,
    path: Path,
    producer: KafkaProducer,
    settings: Settings,
    codec: Codec | None = None,
    progress: Callable[[RunReport], None] | None = None,
) -> RunReport:
    codec = codec or Codec()
    report = RunReport(connector.name)
    inbound_topic = topic_name(connector.topic, settings)
    dlq_topic = topic_name(DEADLETTER, settings)
    pending = []
    for outcome in prepare(connector, read_records(path), codec):
        report.read += 1
        if outcome.error is None:
            pending.append(producer.send(inbound_topic, key=outcome.key, value=outcome.value))
            report.produced += 1
        else:
            pending.append(producer.send(dlq_topic, value=outcome.value, headers=outcome.headers))
            report.dead_lettered += 1
            report.errors[type(outcome.error).__name__] += 1
        if len(pending) >= CONFIRM_EVERY:
            _confirm(producer, pending)
            if progress:
                progress(report)
    _confirm(producer, pending)
    if progress:
        progress(report)
    return report


def _confirm(producer: KafkaProducer, pending: list[Any]) -> None:
    """Block until the broker has acknowledged every pending send; raise if any failed."""
    producer.flush(timeout=DELIVERY_TIMEOUT_S)
    for future in pending:
        future.get(timeout=DELIVERY_TIMEOUT_S)
    pending.clear()
