"""The audit trail as it travels on `mash.audit.v1`, read back for verification."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from mash.codec import Codec
from services.sharing.audit_chain import Sealed

AUDIT_SCHEMA = "uk.mash.hub.AuditRecord"


def encoded(codec: Codec, entry: Sealed, decisions: str | None = None, check_types: bool = False) -> bytes:
    """An entry as a record of the topic (its decision set with it when named, for the topic alone to verify)."""
    return codec.encode({"chain": entry.chain, "seq": entry.seq, "prev_hash": entry.prev_hash, "hash": entry.hash,
                         "body": entry.body, "decisions": decisions, "signature": entry.signature},
                        AUDIT_SCHEMA, check_types=check_types)


def read_topic(bootstrap: str, topic: str, codec: Codec, timeout_s: float = 30.0,
               legacy_through: Mapping[str, int] | None = None,
               unreadable: list[str] | None = None, client: Mapping[str, Any] | None = None) -> Iterator[Sealed]:
    """Every record on the topic, partition by partition in offset order (a chain lives on one).

    Which unsigned records predate signing (`legacy`): with `legacy_through` (the database's record
    of each chain's last unsigned sequence number), exactly those; without it, a partition's unsigned
    records before its first signed one (the log only grows at its end). A message that is not an
    audit record at all is named in `unreadable` (partition, offset, why) and read past."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=int(timeout_s * 1000), **(client or {}))
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        for number in partitions:
            tp = TopicPartition(topic, number)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            signed_yet = False
            while consumer.position(tp) < end:
                batch = consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=5000).get(tp, [])
                if not batch:
                    raise TimeoutError(f"{topic}[{number}] stopped at offset {consumer.position(tp)} of {end}")
                for message in batch:
                    try:
                        record, _ = codec.decode(message.value, reader_name=AUDIT_SCHEMA)
                    except Exception as exc:  # someone else's message: named, not fatal
                        if unreadable is None:
                            raise
                        unreadable.append(f"partition {number}, offset {message.offset}: not an audit record "
                                          f"({type(exc).__name__})")
                        continue
                    signature = record.get("signature")
                    signed_yet = signed_yet or signature is not None
                    legacy = signature is None and (
                        int(record["seq"]) <= legacy_through.get(record["chain"], 0) if legacy_through is not None
                        else not signed_yet)
                    yield Sealed(record["chain"], int(record["seq"]), record["prev_hash"], record["hash"],
                                 record["body"], record.get("decisions"), signature, legacy=legacy)
    finally:
        consumer.close()
