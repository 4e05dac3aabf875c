"""The audit trail as it travels on `mash.audit.v1`, read back for verification."""

from __future__ import annotations

from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition

from mash.codec import Codec
from services.sharing.audit_chain import Sealed


def read_topic(bootstrap: str, topic: str, codec: Codec, timeout_s: float = 30.0) -> Iterator[Sealed]:
    """Every record on the topic, partition by partition in offset order (a chain lives on one). A
    partition's unsigned records before its first signed one predate signing (`legacy`); the log
    only grows at its end, so nothing unsigned can be put among them later."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=int(timeout_s * 1000))
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
                    record, _ = codec.decode(message.value)
                    signature = record.get("signature")
                    signed_yet = signed_yet or signature is not None
                    yield Sealed(record["chain"], int(record["seq"]), record["prev_hash"], record["hash"],
                                 record["body"], record.get("decisions"), signature, legacy=not signed_yet)
    finally:
        consumer.close()
