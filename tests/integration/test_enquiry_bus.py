"""The MASH enquiry on the real broker: each information request on its agency's
`mash.requests.<agency>.v1` carrying only what the request shares, the threshold decision on
`mash.decisions.v1` (which triage takes without acting on it), and the outcome, and only the outcome,
fed back to the referring agency on its topic; a request edited in the database is never sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import EnquiryRecord, InformationRequestRecord
from mash.settings import Settings
from mash.topics import DECISIONS, requests_topic, topic_name
from services.enquiry.catalogue import load_catalogue
from services.messages import InMessage
from services.triage.correlation import Rules
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage.stage import Triage
from services.triage_app.outbox import Outbox
from services.triage_app.runtime import app_outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.support.topics import read_topic
from tests.support.triage_data import PASSWORD, Clock

CODEC = Codec()
PROFILE = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")


@pytest.fixture
def app_client(provisioned: Settings, sessions: sessionmaker[Session],
               data: Any) -> Iterator[tuple[TestClient, Outbox]]:
    catalogue = load_catalogue()
    outbox = app_outbox(sessions, provisioned, provisioned.bootstrap_servers, catalogue)
    clock = Clock()
    client = TestClient(create_app(AppConfig(sessions, load_scoring(), "bus-secret-" * 4, outbox, profile=PROFILE,
                                             clock=clock, catalogue=catalogue)), follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
    yield client, outbox
    outbox.close()
    client.close()


def _csrf(client: TestClient, path: str = "/") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def _read(settings: Settings, topic: str) -> list[tuple[dict[str, Any], str, bytes]]:
    found = []
    for message in read_topic(settings.bootstrap_servers, topic):
        record, writer = CODEC.decode(message.value)
        found.append((record, writer.name, message.value))
    return found


def _open(client: TestClient, alert_id: str, agencies: list[str]) -> str:
    client.post(f"/alerts/{alert_id}/claim", data={"csrf": _csrf(client)})
    opened = client.post(f"/alerts/{alert_id}/enquiry", data={
        "csrf": _csrf(client), "purpose": "Is Ruby safe at home?", "lawful_basis": "CHILDREN_ACT_1989_S47",
        "consent": "GIVEN", "agency": agencies})
    assert opened.status_code == 303, opened.text
    return opened.headers["location"].rsplit("/", 1)[1]


def test_each_request_reaches_its_agencys_topic_with_only_what_it_shares(
        app_client: tuple[TestClient, Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    client, _ = app_client
    enquiry_id = _open(client, data["ruby"]["alert_id"], ["police", "health"])
    police = _read(provisioned, topic_name(requests_topic("police"), provisioned))
    health = _read(provisioned, topic_name(requests_topic("health"), provisioned))
    assert [(r["agency"], name) for r, name, _ in police] == [("police", "uk.mash.hub.InformationRequest")]
    assert [r["agency"] for r, _, _ in health] == ["health"]
    request = police[0][0]
    assert request["enquiry_id"] == enquiry_id and request["rag"] == "RED" and request["consent"] == "GIVEN"
    assert [s["identity"] for s in request["subjects"]] == [{
        "subject.given_name": "Ruby", "subject.family_name": "Okafor", "subject.date_of_birth": "2015-03-02"}]
    assert [p["id"] for p in request["prompts"]] == ["domestic_abuse", "pnc_pnd", "missing_episodes", "other"]
    raw = police[0][2] + health[0][2]
    assert b"CONFIDENTIAL-CLINICAL-DETAIL" not in raw and b"DOMESTIC_ABUSE" not in raw and b"pwned" not in raw
    with sessions() as session:
        assert all(r.published_at is not None for r in session.scalars(select(InformationRequestRecord)))


def test_the_decision_goes_on_the_decisions_topic_and_the_referrer_is_told_the_outcome_only(
        app_client: tuple[TestClient, Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    client, _ = app_client
    enquiry_id = _open(client, data["ruby"]["alert_id"], ["health"])
    closed = client.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": _csrf(client, f"/enquiries/{enquiry_id}"), "level": "4", "outcome": "STRATEGY_DISCUSSION_S47",
        "factor": ["3B", "18C"], "rationale": "SECRET-RATIONALE: police DA history"})
    assert closed.status_code == 303, closed.text
    decisions = [(r, name) for r, name, _ in _read(provisioned, topic_name(DECISIONS, provisioned))]
    (decision, _), = [(r, n) for r, n in decisions if n == "uk.mash.hub.EnquiryDecision"]
    assert (decision["enquiry_id"], decision["level"], decision["factors"]) == (enquiry_id, 4, ["3B", "18C"])
    feedback = [(r, raw) for r, name, raw in _read(provisioned, topic_name(requests_topic("police"), provisioned))
                if name == "uk.mash.hub.ReferrerFeedback"]
    assert len(feedback) == 1, "police made the referral (its event reached the hub first): it is told"
    told, raw = feedback[0]
    assert (told["outcome"], told["level"], told["referral_event_id"]) == (
        "STRATEGY_DISCUSSION_S47", 4, data["ruby"]["police"]["event_id"])
    assert b"SECRET-RATIONALE" not in raw and b"18C" not in raw
    assert told["due_at"] - told["decided_at"] <= timedelta(days=4)  # one working day (a weekend at most between)
    with sessions() as session:
        enquiry = session.get(EnquiryRecord, enquiry_id)
        assert enquiry is not None and enquiry.published_at and enquiry.feedback_published_at
    value = next(raw for r, name, raw in _read(provisioned, topic_name(DECISIONS, provisioned))
                 if name == "uk.mash.hub.EnquiryDecision")
    with sessions() as session:  # triage reads it from the decisions topic and does nothing with it
        triage = Triage(CODEC, Rules(load_scoring(), PROFILE), sessions)
        out = triage.process_batch([InMessage(topic_name(DECISIONS, provisioned), 0, 0, b"k", value)])
        assert out == []


def test_a_request_edited_in_the_database_after_sealing_is_never_sent(
        app_client: tuple[TestClient, Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    client, outbox = app_client
    outbox._requests_topic = None  # type: ignore[attr-defined] # hold the outbox while the row is edited
    _open(client, data["ruby"]["alert_id"], ["health"])
    with sessions.begin() as session:
        session.execute(update(InformationRequestRecord).values(shared=[{
            "person_id": data["ruby"]["person_id"], "relation": "child",
            "identity": {"subject.given_name": "Ruby",
                         "payload.presenting_complaint": "CONFIDENTIAL-CLINICAL-DETAIL"}}]))
    outbox._requests_topic = lambda agency: topic_name(requests_topic(agency), provisioned)  # type: ignore[attr-defined]
    outbox.flush()
    assert _read(provisioned, topic_name(requests_topic("health"), provisioned)) == []
    with sessions() as session:
        (row,) = session.scalars(select(InformationRequestRecord)).all()
        assert row.published_at is None and row.send_error and "not as sealed" in row.send_error
