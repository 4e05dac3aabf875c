"""How far a consumer group is behind, per topic partition: the broker's end offset less the
group's committed offset (a partition it has never committed counts from 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError


def group_lag(bootstrap: str, group: str, topics: Sequence[str], consumer: KafkaConsumer | None = None,
              client: Mapping[str, Any] | None = None) -> dict[tuple[str, int], int] | None:
    """Lag per (topic, partition); None while the group coordinator cannot answer yet. `client`: the
    connection options of the asking service (`mash.kafka_security`)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-lag", **(client or {}))
    try:
        committed = admin.list_group_offsets(group).get(group, {})
    except KafkaError:
        return None
    finally:
        admin.close()
    own = consumer is None
    consumer = consumer or KafkaConsumer(bootstrap_servers=bootstrap, client_id="mash-lag", **(client or {}))
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        end = consumer.end_offsets(partitions)
    finally:
        if own:
            consumer.close()
    lag = {}
    for tp in partitions:
        done = committed.get(tp)
        lag[(tp.topic, tp.partition)] = end[tp] - (done.offset if done is not None and done.offset >= 0 else 0)
    return lag
