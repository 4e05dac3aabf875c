"""Counting what went into the pipeline and what came out, to prove nothing was lost.

Reads the topics and the triage store; used by `mash demo` and the end-to-end tests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import Engine, func, select

from mash.codec import Codec
from mash.consumer_lag import group_lag
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.models import AlertRecord, EventOutcomeRecord
from mash.settings import Settings
from mash.topics import AGENCIES, DEADLETTER, HUB_STAGE_INPUTS, INBOUND_SCHEMAS, inbound, stage_group, topic_name


@dataclass
class PipelineCounts:
    inbound_messages: Counter[str] = field(default_factory=Counter)  # per agency
    inbound_events: int = 0  # distinct event ids among decodable inbound messages
    inbound_undecodable: int = 0  # messages on inbound topics that are not inbound events
    dead_letters: Counter[str] = field(default_factory=Counter)  # per stage
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)  # "stage: class"
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)  # NEW | REVISION | WITHDRAWAL: what each event was
    alerts: Counter[str] = field(default_factory=Counter)  # per RAG
    hub_lag: int | None = None  # None until the hub's consumer group has committed

    @property
    def accounted(self) -> bool:
        """Every inbound event has exactly one outcome; every other message was dead-lettered."""
        return (self.hub_lag == 0
                and sum(self.outcomes.values()) == self.inbound_events
                and self.dead_letters["hub:enrichment"] == self.inbound_undecodable)


def count(bootstrap: str, settings: Settings, engine: Engine, codec: Codec | None = None) -> PipelineCounts:
    codec = codec or Codec()
    counts = PipelineCounts()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=1000, client_id="mash-counter",
                             **kafka_python_options(settings, OPERATOR))
    try:
        event_ids: set[str] = set()
        for agency in AGENCIES:
            for value in _read_all(consumer, topic_name(inbound(agency), settings)):
                counts.inbound_messages[agency] += 1
                try:
                    record, writer = codec.decode(value)
                    if writer.name not in INBOUND_SCHEMAS.values():
                        raise ValueError(writer.name)
                    event_ids.add(record["envelope"]["event_id"])
                except ValueError:
                    counts.inbound_undecodable += 1  # the enrichment stage dead-letters these
        counts.inbound_events = len(event_ids)
        for value in _read_all(consumer, topic_name(DEADLETTER, settings)):
            record, _ = codec.decode(value)
            counts.dead_letters[record["stage"]] += 1
            counts.dead_letter_reasons[f"{record['stage']}: {record['error_class']}"] += 1
        counts.hub_lag = _group_lag(bootstrap, consumer, settings)
    finally:
        consumer.close()
    with engine.connect() as db:
        counts.outcomes.update(dict(db.execute(
            select(EventOutcomeRecord.outcome, func.count()).group_by(EventOutcomeRecord.outcome)).all()))
        counts.kinds.update(dict(db.execute(
            select(EventOutcomeRecord.kind, func.count()).group_by(EventOutcomeRecord.kind)).all()))
        counts.alerts.update(dict(db.execute(
            select(AlertRecord.rag, func.count()).group_by(AlertRecord.rag)).all()))
    return counts


def _read_all(consumer: KafkaConsumer, topic: str) -> list[bytes]:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    values: list[bytes] = []
    remaining = {tp for tp in partitions if end[tp] > 0}
    while remaining:
        for tp, records in consumer.poll(timeout_ms=1000).items():
            values.extend(r.value for r in records)
            if records and records[-1].offset + 1 >= end[tp]:
                remaining.discard(tp)
    return values


def _group_lag(bootstrap: str, consumer: KafkaConsumer, settings: Settings) -> int | None:
    """What every hub stage has yet to commit, over all its inputs; None until each has committed."""
    total = 0
    for stage, inputs in HUB_STAGE_INPUTS.items():
        lag = group_lag(bootstrap, stage_group(stage, settings), [topic_name(t, settings) for t in inputs], consumer,
                        kafka_python_options(settings, OPERATOR))
        if lag is None:
            return None
        total += sum(lag.values())
    return total
