"""Returns over the bus, on the real broker: the education connector answers its information request
from the school system's database (`mash connector answer`'s loop), the app reads `mash.returns.v1`,
checks the answer, has the sharing policy decide who reads it, and seals it; what it cannot take is
dead-lettered with the reason, and an answer read twice is recorded once."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.education.answers import answer_from
from connectors.education.connector import EducationConnector
from connectors.sdk.answering import RequestAnswerer
from mash.codec import Codec
from mash.kafka_security import OPERATOR, connector, kafka_python_options
from mash.models import InformationRequestRecord
from mash.settings import Settings
from mash.topics import (
    DEADLETTER,
    RETURNS,
    requests_topic,
    topic_name,
)
from services.enquiry.catalogue import load_catalogue
from services.sharing.policy import load_policy
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.outbox import Outbox
from services.triage_app.returns_inbox import ReturnsInbox
from services.triage_app.runtime import app_outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.support.bus import operator_client
from tests.support.topics import read_topic
from tests.support.triage_data import ALL_MASH, NOW, PASSWORD, Clock, alert, shared

CODEC = Codec()
SCHOOL_VIEW = ["subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.upn"]


@pytest.fixture
def ava(sessions: sessionmaker[Session], data: Any) -> str:
    """A child the police reported, whom the school's role may identify (Operation Encompass fields)."""
    person = str(uuid.uuid4())
    event = shared(person, "police.public_protection_notification", "POLICE", NOW - timedelta(hours=1), {
        "subject": {"given_name": "Ava", "family_name": "Okafor", "date_of_birth": "2013-11-30",
                    "upn": "A820200114934"},
        "payload": {"incident_type": "DOMESTIC_ABUSE", "children_present": True}},
        {**{r: [*SCHOOL_VIEW, "payload.incident_type"] for r in ALL_MASH},
         "education_safeguarding_lead": SCHOOL_VIEW})
    raised = alert(person, "AMBER", [event], NOW - timedelta(minutes=50), NOW + timedelta(hours=20),
                   NOW + timedelta(hours=15), 60, ["domestic-abuse-children-present"], ["domestic abuse (+25)"])
    TriageStore(sessions).apply([raised], [], [event])
    return str(raised["alert_id"])


@pytest.fixture
def school_db(tmp_path: Path) -> Any:
    path = tmp_path / "school.db"
    with sqlite3.connect(path) as db:
        db.executescript(EducationConnector.sample.read_text())
    return create_engine(f"sqlite:///{path}")


@pytest.fixture
def app(provisioned: Settings, sessions: sessionmaker[Session]) -> Iterator[tuple[TestClient, Outbox, ReturnsInbox]]:
    catalogue = load_catalogue()
    policy = load_policy(PROFILES_DIR.parents[0] / "sharing" / "default.yaml")
    outbox = app_outbox(sessions, provisioned, provisioned.bootstrap_servers, catalogue)
    inbox = ReturnsInbox(sessions, provisioned.bootstrap_servers, topic_name(RETURNS, provisioned),
                         topic_name(DEADLETTER, provisioned), f"{provisioned.app_id}.returns-test", CODEC, catalogue,
                         lambda: policy, clock=lambda: NOW + timedelta(hours=1),
                         client=kafka_python_options(provisioned, OPERATOR))
    client = TestClient(create_app(AppConfig(
        sessions, load_scoring(), "returns-secret-" * 3, outbox, clock=Clock(), catalogue=catalogue,
        profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml"), policy=lambda: policy)),
        follow_redirects=False)
    yield client, outbox, inbox
    inbox.close()
    outbox.close()
    client.close()


def _login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token}).status_code == 303


def _csrf(client: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def _settle(inbox: ReturnsInbox, want: int) -> list[Any]:
    """Poll until `want` messages are settled (the group's first poll may only join it)."""
    settled = []
    for _ in range(30):
        settled.append(inbox.poll_once(timeout_ms=1000))
        if sum(s.recorded + s.duplicates + s.dead_letters for s in settled) >= want:
            break
    return settled


def _answerer(provisioned: Settings, school_db: Any) -> RequestAnswerer:
    return RequestAnswerer(provisioned.bootstrap_servers, "education",
                           topic_name(requests_topic("education"), provisioned), topic_name(RETURNS, provisioned),
                           topic_name(DEADLETTER, provisioned), f"{provisioned.app_id}.answer.education",
                           lambda request: answer_from(school_db, request), "education-connector",
                           clock=lambda: NOW + timedelta(minutes=30),
                           client=kafka_python_options(provisioned, connector("education")))


def test_the_school_system_answers_its_request_over_the_bus_and_the_policy_decides_who_reads_it(
        app: tuple[TestClient, Outbox, ReturnsInbox], provisioned: Settings, sessions: sessionmaker[Session],
        ava: str, school_db: Any) -> None:
    client, _, inbox = app
    _login(client, "alice")
    client.post(f"/alerts/{ava}/claim", data={"csrf": _csrf(client)})
    opened = client.post(f"/alerts/{ava}/enquiry", data={
        "csrf": _csrf(client), "purpose": "Is Ava safe?", "lawful_basis": "CHILDREN_ACT_2004_S11",
        "consent": "GIVEN", "agency": ["education", "police"]})
    assert opened.status_code == 303, opened.text
    answerer = _answerer(provisioned, school_db)
    try:
        for _ in range(30):
            if answerer.poll_once(timeout_ms=1000).answered:
                break
    finally:
        answerer.close()
    assert answerer.report.answered == 1 and answerer.report.dead_letters == 0
    assert sum(s.recorded for s in _settle(inbox, 1)) == 1
    with sessions() as session:
        row = session.scalars(select(InformationRequestRecord).where(
            InformationRequestRecord.agency == "education")).one()
    assert (row.answer, row.answered_by, row.systems_searched) == ("HELD", "education-connector",
                                                                  ["school information system"])
    assert "82% attendance" in (row.answers or {})["attendance"]
    assert row.views is not None and "answers.attendance" in row.views["mash_social_worker"]
    assert row.views["education_safeguarding_lead"] == []  # the school's own lead is not a MASH decider
    page = client.get(f"/enquiries/{row.enquiry_id}").text
    assert "82% attendance" in page and "information held" in page


def test_what_the_app_cannot_take_from_the_returns_topic_is_dead_lettered_and_a_repeat_is_recorded_once(
        app: tuple[TestClient, Outbox, ReturnsInbox], provisioned: Settings, sessions: sessionmaker[Session],
        ava: str) -> None:
    client, _, inbox = app
    _login(client, "alice")
    client.post(f"/alerts/{ava}/claim", data={"csrf": _csrf(client)})
    client.post(f"/alerts/{ava}/enquiry", data={
        "csrf": _csrf(client), "purpose": "Is Ava safe?", "lawful_basis": "CHILDREN_ACT_2004_S11",
        "consent": "GIVEN", "agency": ["education"]})
    with sessions() as session:
        request_id = session.scalars(select(InformationRequestRecord.request_id)).one()

    def answer(**change: Any) -> bytes:
        record = {"request_id": request_id, "agency": "education", "answer": "NIL", "answers": {}, "summary": "",
                  "declined_reason": "", "searched_on": NOW.date(), "systems_searched": ["SIMS"],
                  "answered_by": "sims", "answered_at": NOW, **change}
        return CODEC.encode(record, "uk.mash.hub.InformationReturn")

    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    topic = topic_name(RETURNS, provisioned)
    for value in (b"\x00garbage", answer(agency="police"), answer(request_id=str(uuid.uuid4())),
                  answer(systems_searched=[]), answer(), answer(), answer(answer="HELD", answers={"other": "x"})):
        producer.send(topic, key=request_id.encode(), value=value).get(timeout=30)
    producer.close()
    settled = _settle(inbox, 7)
    assert (sum(s.recorded for s in settled), sum(s.duplicates for s in settled),
            sum(s.dead_letters for s in settled)) == (1, 1, 5)
    reasons = _dead_letter_reasons(provisioned)
    assert any("not a readable InformationReturn" in r for r in reasons)
    assert any("was sent to education, not police" in r for r in reasons)
    assert any("no information request" in r for r in reasons)
    assert any("systems were searched" in r for r in reasons)
    assert any("already answered (NIL) and this answer differs" in r for r in reasons)
    with sessions() as session:
        assert session.get(InformationRequestRecord, request_id).answer == "NIL"  # type: ignore[union-attr]


def _dead_letter_reasons(settings: Settings) -> list[str]:
    return [dict(m.headers).get("mash.dlq.error_message", b"").decode()
            for m in read_topic(settings.bootstrap_servers, topic_name(DEADLETTER, settings))
            if dict(m.headers).get("mash.dlq.stage") == b"returns"]
