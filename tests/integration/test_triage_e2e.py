"""End to end through the real broker: a synthetic feed raises the alerts its ground truth
expects (precision and recall printed), one open alert per child; and a decision recorded in the
triage app reaches the hub on mash.decisions.v1 and closes the alert."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import Popen

from fastapi.testclient import TestClient
from kafka import KafkaConsumer
from sqlalchemy import Engine, func, select

from connectors.synth.generate import generate
from mash.alert_truth import alert_truth
from mash.codec import Codec
from mash.db import session_factory
from mash.kafka_security import TRIAGE_APP, kafka_python_options
from mash.models import AlertRecord
from mash.pipeline_counts import PipelineCounts, count
from mash.settings import Settings
from mash.topics import AGENCIES, DECISIONS, MATCH_ANSWERS, topic_name
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import create_user
from services.triage_app.outbox import Outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.integration.conftest import mash, wait_for
from tests.support.bus import operator_client
from tests.support.triage_data import NOW, PASSWORD, sealed_decision

EVENTS = 3000
# The truth is the RAG truth (docs/rag-ground-truth.md): a child should be alerted when the facts
# of their episodes rate them, not when two agencies merely met them within 7 days. The calibrated
# scoring (issue 19) measured through the real broker on this feed (seed 7): precision 0.976,
# recall 0.981 (offline, bench/rag_accuracy.py --offline: 0.981, 0.981); before calibration 0.831,
# 0.755. The floors sit a little below, so a change that makes alerting worse fails here.
MIN_PRECISION = 0.95
MIN_RECALL = 0.96


def test_the_synthetic_feed_raises_the_alerts_its_truth_expects_one_per_child(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    generate(feed, EVENTS, seed=7)
    hub_worker()
    for agency in AGENCIES:
        mash(provisioned, "connector", "run", agency, "--synth", str(feed))

    def drained() -> PipelineCounts | None:
        counts = count(provisioned.bootstrap_servers, provisioned, engine)
        return counts if counts.inbound_events > EVENTS * 0.9 and counts.accounted else None

    wait_for(drained, timeout_s=600, what="every synthetic event to have an outcome")
    truth = alert_truth(feed, engine)
    print(f"\nalerting against the synthetic truth: {truth}")
    with engine.connect() as db:
        open_per_person = db.execute(select(func.count()).select_from(AlertRecord).where(AlertRecord.status == "OPEN")
                                     .group_by(AlertRecord.person_id)).scalars().all()
    assert open_per_person and max(open_per_person) == 1  # one open alert per person
    assert truth.mixed == 0  # no alert joins two children
    assert truth.children_with_two_open <= 0.02 * truth.should  # a child the index could not join up
    assert truth.precision >= MIN_PRECISION and truth.recall >= MIN_RECALL, str(truth)


def test_a_decision_in_the_app_reaches_the_hub_and_closes_the_alert(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]],
) -> None:
    hub_worker()
    for agency in AGENCIES:
        mash(provisioned, "connector", "run", agency, "--sample")
    alert_id = wait_for(lambda: _first_red(engine), what="a red alert in the store")
    sessions = session_factory(engine)
    with sessions.begin() as session:
        create_user(session, "alice", "Alice", "triage_worker", "mash_social_worker", PASSWORD, NOW)
    topic = topic_name(DECISIONS, provisioned)
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic, topic_name(MATCH_ANSWERS, provisioned), Codec(),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    client = TestClient(create_app(AppConfig(sessions, load_scoring(), "e2e-secret-" * 4, outbox)))
    token = client.post("/api/login", json={"username": "alice", "password": PASSWORD}).json()["csrf_token"]
    headers = {"X-CSRF-Token": token}
    assert client.post(f"/api/alerts/{alert_id}/claim", headers=headers).status_code == 200
    seen = client.get(f"/api/alerts/{alert_id}", headers=headers).json()["revision"]
    decided = client.post(f"/api/alerts/{alert_id}/decision", headers=headers,
                          json={"outcome": "EARLY_HELP", "rationale": "Family agrees to early help.",
                                "alert_revision": seen})
    assert decided.status_code == 200 and "reach the hub" not in decided.json()["result"]  # sent at once
    outbox.close()

    def closed() -> bool:
        with engine.connect() as db:
            return db.scalar(select(AlertRecord.status).where(AlertRecord.alert_id == alert_id)) == "CLOSED"

    wait_for(closed, what="the hub to close the alert on the decision")
    consumer = KafkaConsumer(topic, **operator_client(provisioned), auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    sent = list(consumer)  # read until 10 s pass with nothing new: a second copy would be here too
    consumer.close()
    (message,) = sent  # the decision, once
    record, _ = Codec().decode(message.value)
    assert (record["alert_id"], record["outcome"], record["decided_by"]) == (alert_id, "EARLY_HELP", "alice")
    assert record["audit_ref"] == "triage-app:2"  # after the claim's sealed history line


def _first_red(engine: Engine) -> str | None:
    with engine.connect() as db:
        return db.scalar(select(AlertRecord.alert_id).where(AlertRecord.rag == "RED").limit(1))


def test_one_decision_the_outbox_cannot_encode_is_recorded_and_never_holds_up_the_others(
    provisioned: Settings, engine: Engine,
) -> None:
    """A row the schema refuses (an outcome from no version of the app) was retried first on every
    flush for ever, and every later decision waited behind it."""
    from datetime import UTC, datetime, timedelta

    from mash.models import TriageDecisionRecord

    sessions = session_factory(engine)
    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    with sessions.begin() as session:
        for n, outcome in enumerate(("NOT_AN_OUTCOME", "EARLY_HELP")):
            sealed_decision(session, f"00000000-0000-4000-8000-00000000000{n}", outcome, start + timedelta(minutes=n))
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic_name(DECISIONS, provisioned),
                    topic_name(MATCH_ANSWERS, provisioned), Codec(),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    try:
        assert outbox.flush() == 1
        assert outbox.flush() == 0  # the bad one is not tried again
    finally:
        outbox.close()
    with engine.connect() as db:
        rows = {r.outcome: r for r in db.execute(select(TriageDecisionRecord)).all()}
    assert rows["EARLY_HELP"].published_at is not None
    assert rows["NOT_AN_OUTCOME"].published_at is None and "NOT_AN_OUTCOME" in rows["NOT_AN_OUTCOME"].send_error
