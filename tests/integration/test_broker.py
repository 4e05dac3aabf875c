"""The pinned Kafka serves consumer groups of both clients the project uses.

kafka-python (connectors, tools) and aiokafka (under faust-streaming): the reason for the pin in
infra/kafka/pom.xml.
"""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from mash.settings import Settings
from mash.topics import CATALOGUE, provision, topic_name
from tests.support.bus import operator_aioclient, operator_client


def make_topic(bootstrap: str, messages: int) -> str:
    topic = f"t{uuid.uuid4().hex[:8]}.groups"
    admin = KafkaAdminClient(**operator_client(bootstrap))
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**operator_client(bootstrap), acks="all")
    for i in range(messages):
        producer.send(topic, key=str(i % 7).encode(), value=f"m{i}".encode())
    producer.flush()
    producer.close()
    return topic


def test_kafka_python_consumer_group_reads_everything_and_commits(bootstrap: str) -> None:
    topic = make_topic(bootstrap, 50)
    consumer = KafkaConsumer(topic, **operator_client(bootstrap), group_id=f"g-{topic}",
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=10_000)
    seen = set()
    for record in consumer:
        seen.add(record.value)
        if len(seen) == 50:
            break
    consumer.commit()
    committed = sum(consumer.committed(tp) or 0 for tp in consumer.assignment())
    consumer.close()
    assert len(seen) == 50 and committed == 50


def test_aiokafka_consumer_group_reads_everything_and_commits(bootstrap: str) -> None:
    topic = make_topic(bootstrap, 50)

    async def consume() -> tuple[int, int]:
        consumer = AIOKafkaConsumer(topic, **operator_aioclient(bootstrap), group_id=f"g-{topic}",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            seen = set()
            while len(seen) < 50:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                seen |= {r.value for records in batches.values() for r in records}
            await consumer.commit()
            committed = 0
            for tp in consumer.assignment():
                committed += await consumer.committed(tp) or 0
            return len(seen), committed
        finally:
            await consumer.stop()

    assert asyncio.run(consume()) == (50, 50)


def test_provisioning_creates_the_catalogue_once(bootstrap: str) -> None:
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    first = provision(bootstrap, settings)
    second = provision(bootstrap, settings)
    assert sorted(first) == sorted(topic_name(spec.name, settings) for spec in CATALOGUE)
    assert second == []
    admin = KafkaAdminClient(**operator_client(bootstrap))
    described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(first)}
    admin.close()
    assert set(described.values()) == {settings.topic_partitions}
