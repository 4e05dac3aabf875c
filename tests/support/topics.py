"""Reading a topic whole in a test: every message from the beginning up to its end offsets now."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, TopicPartition

from tests.support.bus import operator_client


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(**operator_client(bootstrap), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: list[Any] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                found.extend(batch)
                if batch and batch[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return found
    finally:
        consumer.close()
