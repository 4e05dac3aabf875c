"""The whole pipeline through a real broker, real Faust workers and a real database."""

from __future__ import annotations

import signal
from collections.abc import Callable
from subprocess import Popen

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Engine, func, select

from mash.codec import Codec
from mash.models import AlertRecord, EventOutcomeRecord, LinkDecisionRecord
from mash.pipeline_counts import PipelineCounts, count
from mash.settings import Settings
from mash.topics import AGENCIES, DEADLETTER, inbound, topic_name
from tests.integration.conftest import mash, wait_for
from tests.support.bus import operator_client
from tests.unit.test_correlation import MECHANICS_SCORING

SAMPLE_EVENTS = 23  # distinct events in the shipped samples (24 messages: one resubmission)
SAMPLE_ALERTS = 7  # six children reported by two or more agencies within a week, and one high-risk exploitation alone
# Sample events whose identifiers were all new to the index but whose name, date of birth, sex and
# postcode matched a child it knew (e.g. Noah Bennett's police record carries no NHS number).
SAMPLE_PROBABILISTIC_LINKS = 4
EDUCATION_EVENTS = 6


@pytest.fixture(autouse=True)
def mechanics_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alerts counted here (SAMPLE_ALERTS) are the pipeline's mechanics with the frozen weights of
    tests/support/scoring_mechanics.yaml, which the hub workers these tests start score with
    (MASH_TRIAGE_SCORING), not the calibrated scoring."""
    monkeypatch.setenv("MASH_TRIAGE_SCORING", str(MECHANICS_SCORING))


def run_connectors(settings: Settings, agencies: tuple[str, ...] = AGENCIES) -> None:
    for agency in agencies:
        mash(settings, "connector", "run", agency, "--sample")


def drained(settings: Settings, engine: Engine, events: int) -> Callable[[], PipelineCounts | None]:
    def check() -> PipelineCounts | None:
        counts = count(settings.bootstrap_servers, settings, engine)
        return counts if counts.accounted and counts.inbound_events == events else None
    return check


def alert_rows(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as db:
        return [tuple(r) for r in db.execute(  # type: ignore[misc]
            select(AlertRecord.person_id, AlertRecord.rag, AlertRecord.revision).order_by(AlertRecord.person_id))]


def test_samples_flow_from_connectors_to_stored_alerts(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]]
) -> None:
    hub_worker()
    run_connectors(provisioned)
    counts = wait_for(drained(provisioned, engine, SAMPLE_EVENTS), what="every event to have an outcome")
    assert sum(counts.inbound_messages.values()) == SAMPLE_EVENTS + 1
    assert sum(counts.outcomes.values()) == SAMPLE_EVENTS
    assert counts.dead_letters == {"connector:police": 2, "connector:health": 2, "connector:education": 1,
                                   "connector:social_care": 2}
    alerts = alert_rows(engine)
    assert len(alerts) == SAMPLE_ALERTS
    assert len({person for person, _, _ in alerts}) == SAMPLE_ALERTS  # one alert per child
    assert {rag for _, rag, _ in alerts} <= {"AMBER", "RED"}
    with engine.connect() as db:
        probabilistic = db.scalar(select(func.count()).select_from(LinkDecisionRecord)
                                  .where(LinkDecisionRecord.method == "PROBABILISTIC"))
    assert probabilistic == SAMPLE_PROBABILISTIC_LINKS


def test_a_foreign_message_on_an_inbound_topic_is_dead_lettered_and_the_stream_goes_on(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]]
) -> None:
    hub_worker()
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    police = topic_name(inbound("police"), provisioned)
    producer.send(police, key=b"x", value=b'{"this is": "json, not avro"}')
    producer.send(police, key=b"y", value=b"\xc3\x01" + b"\x00" * 8 + b"unknown schema")
    producer.flush()
    producer.close()
    run_connectors(provisioned)
    counts = wait_for(drained(provisioned, engine, SAMPLE_EVENTS), what="the stream to get past the poison")
    assert counts.dead_letters["hub:enrichment"] == 2 == counts.inbound_undecodable
    letters = read_dead_letters(provisioned)
    hub_letters = [(r, h) for r, h in letters if r["stage"] == "hub:enrichment"]
    assert {r["original"] for r, _ in hub_letters} == {b'{"this is": "json, not avro"}',
                                                       b"\xc3\x01" + b"\x00" * 8 + b"unknown schema"}
    assert all(r["original_topic"] == police and r["original_offset"] is not None for r, _ in hub_letters)
    assert {h["mash.dlq.error_class"] for _, h in hub_letters} == {b"CodecError"}
    assert len(alert_rows(engine)) == SAMPLE_ALERTS


def test_a_killed_worker_recovers_its_state_and_resubmissions_change_nothing(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]]
) -> None:
    first = hub_worker()
    run_connectors(provisioned, ("police", "health"))
    wait_for(drained(provisioned, engine, 13), what="the first worker to decide police and health events")
    first.send_signal(signal.SIGKILL)  # no clean shutdown, no leaving the group
    first.wait()
    hub_worker()
    run_connectors(provisioned, ("education", "social_care"))
    wait_for(drained(provisioned, engine, SAMPLE_EVENTS), what="the restarted worker to drain")
    # The child known to police and health before the crash, and to education after it: only a
    # triage state recovered from its changelog joins the three into one RED alert.
    with engine.connect() as db:
        agencies = [sorted(a) for a in db.scalars(select(AlertRecord.agencies))]
    assert ["EDUCATION", "HEALTH", "POLICE"] in agencies
    alerts = alert_rows(engine)
    assert len(alerts) == SAMPLE_ALERTS == len({person for person, _, _ in alerts})

    run_connectors(provisioned)  # the file drops are sent again; the database poll has nothing new
    counts = wait_for(drained(provisioned, engine, SAMPLE_EVENTS), what="the resubmissions to drain")
    assert sum(counts.inbound_messages.values()) == 2 * (SAMPLE_EVENTS + 1) - EDUCATION_EVENTS
    assert alert_rows(engine) == alerts  # no new alert, no new revision


def outcome_count(engine: Engine) -> int:
    with engine.connect() as db:
        return db.scalar(select(func.count()).select_from(EventOutcomeRecord)) or 0


def read_dead_letters(settings: Settings) -> list[tuple[dict, dict[str, bytes]]]:  # type: ignore[type-arg]
    consumer = KafkaConsumer(**operator_client(settings), enable_auto_commit=False)
    topic = topic_name(DEADLETTER, settings)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = sum(consumer.end_offsets(partitions).values())
    records = []
    while len(records) < end:
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    consumer.close()
    codec = Codec()
    return [(codec.decode(r.value)[0], dict(r.headers)) for r in records]
