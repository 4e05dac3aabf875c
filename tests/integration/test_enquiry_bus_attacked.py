"""Attacks on the MASH enquiry's bus side and JSON API (SQLite; Kafka where the bus is the point):
hostile returns on mash.returns.v1, a return redelivered after a crash, a portal answer racing a bus
answer, rows edited in the database before the outbox sends them, what the JSON API shows to whom,
and an enquiry decision put on triage's shared topic."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.codec import Codec
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.models import EnquiryRecord, InformationRequestRecord
from mash.settings import Settings
from mash.topics import (
    DEADLETTER,
    DECISIONS,
    RETURNS,
    SHARED,
    requests_topic,
    topic_name,
)
from services.enquiry.catalogue import load_catalogue
from services.messages import InMessage
from services.sharing import audit_store
from services.sharing.policy import load_policy
from services.triage.correlation import Rules
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage.stage import ENQUIRY_DECISION_SCHEMA, Triage
from services.triage_app import returns_inbox
from services.triage_app.accounts import create_user
from services.triage_app.outbox import Outbox
from services.triage_app.returns_inbox import NotAReturn, ReturnsInbox, record_message
from services.triage_app.runtime import app_outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.support.bus import operator_client
from tests.support.triage_data import HOSTILE, NOW, PASSWORD, Clock

CODEC = Codec()
CATALOGUE = load_catalogue()
POLICY = load_policy(PROFILES_DIR.parents[0] / "sharing" / "default.yaml")
PROFILE = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")
RETURN = "uk.mash.hub.InformationReturn"
LATER = NOW + timedelta(hours=1)
AGENCY_USERS = {"pc": "police", "nurse": "health", "teacher": "education"}


def _app(sessions: sessionmaker[Session], outbox: Outbox | None = None) -> Any:
    agencies = tuple(CATALOGUE.agencies)
    with sessions.begin() as session:
        for name, agency in AGENCY_USERS.items():
            create_user(session, name, name.title(), "agency_user", None, PASSWORD, NOW, agency, agencies)
    return create_app(AppConfig(sessions, load_scoring(), "bus-attack-secret-" * 3, outbox, clock=Clock(),
                                catalogue=CATALOGUE, profile=PROFILE, policy=lambda: POLICY))


def _maker(app: Any, clients: list[TestClient]) -> Callable[[str], TestClient]:
    def make(username: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        logged = client.post("/api/login", json={"username": username, "password": PASSWORD})
        assert logged.status_code == 200, logged.text
        client.headers["X-CSRF-Token"] = logged.json()["csrf_token"]
        return client
    return make


@pytest.fixture
def api(sessions: sessionmaker[Session], data: Any) -> Iterator[Callable[[str], TestClient]]:
    clients: list[TestClient] = []
    yield _maker(_app(sessions), clients)
    for client in clients:
        client.close()


def _open(client: TestClient, alert_id: str, agencies: list[str], **more: Any) -> str:
    assert client.post(f"/api/alerts/{alert_id}/claim").status_code == 200
    opened = client.post(f"/api/alerts/{alert_id}/enquiry", json={
        "purpose": "Is Ruby safe?", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agencies": agencies, **more})
    assert opened.status_code == 200, opened.text
    return str(opened.json()["enquiry_id"])


def _requests(sessions: sessionmaker[Session]) -> dict[str, InformationRequestRecord]:
    with sessions() as session:
        return {r.agency: r for r in session.scalars(select(InformationRequestRecord))}


@pytest.fixture
def opened(api: Callable[[str], TestClient], data: Any,
           sessions: sessionmaker[Session]) -> dict[str, InformationRequestRecord]:
    _open(api("alice"), data["ruby"]["alert_id"], ["police", "health"])
    return _requests(sessions)


def _return(request_id: str, agency: str = "police", **change: Any) -> bytes:
    record = {"request_id": request_id, "agency": agency, "answer": "NIL", "answers": {}, "summary": "",
              "declined_reason": "", "searched_on": NOW.date(), "systems_searched": ["Niche"],
              "answered_by": "niche-connector", "answered_at": NOW, **change}
    return CODEC.encode(record, RETURN, check_types=False)  # a hostile writer checks nothing


def _settle(sessions: sessionmaker[Session], value: bytes) -> str:
    return record_message(sessions, CODEC, CATALOGUE, POLICY, value, LATER)


def _return_entries(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return sum(orjson.loads(e.body).get("kind") == "information_return" for e in audit_store.read_chains(session))


def _return_labels() -> set[str]:
    return {s.labels.get("agency", "") for m in metrics.INFORMATION_RETURNS.collect() for s in m.samples}


# -- hostile returns (settled one by one, as the inbox does) -------------------------------------------


def _hostile(request_id: str) -> dict[str, bytes]:
    feedback = CODEC.encode({"enquiry_id": str(uuid.uuid4()), "agency": "police",
                             "referral_event_id": str(uuid.uuid4()),
                             "outcome": "ADVICE", "outcome_text": "Advice", "level": 1, "decided_at": NOW,
                             "due_at": NOW}, "uk.mash.hub.ReferrerFeedback")
    return {
        "empty": b"", "garbage": b"\x00\xff" * 5000, "another schema": feedback,
        "truncated": _return(request_id)[:-3],
        "the wrong agency": _return(request_id, agency="education"),
        "a hostile agency": _return(request_id, agency="x" * 5000),
        "no such request": _return(str(uuid.uuid4())),
        "a huge request id": _return("r" * 100_000),
        "an unknown prompt": _return(request_id, answer="HELD", answers={"pnc_pnd": "x", "'; DROP TABLE x; --": "y"}),
        "a huge answer": _return(request_id, answer="HELD", answers={"pnc_pnd": "x" * 8001}),
        "a NUL in the answer": _return(request_id, answer="HELD", answers={"pnc_pnd": "one\x00two"}),
        "a NUL in the summary": _return(request_id, answer="HELD", summary="held\x00"),
        "held but empty": _return(request_id, answer="HELD", answers={"pnc_pnd": "   "}),
        "nil holding something": _return(request_id, answers={"pnc_pnd": "x"}),
        "searched in the future": _return(request_id, searched_on=(NOW + timedelta(days=3)).date()),
        "searched before it was asked": _return(request_id, searched_on=(NOW - timedelta(days=3)).date()),
        "too many systems": _return(request_id, systems_searched=[f"s{i}" for i in range(21)]),
        "a huge system": _return(request_id, systems_searched=["s" * 81]),
        "declined without reason": _return(request_id, answer="DECLINED", systems_searched=[], searched_on=None),
    }


def test_hostile_returns_are_each_refused_and_record_nothing(
        opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    request_id = opened["police"].request_id
    labels = _return_labels()
    for name, value in _hostile(request_id).items():
        with pytest.raises(NotAReturn):
            _settle(sessions, value)
            pytest.fail(f"{name} was taken")
    row = _requests(sessions)["police"]
    assert row.answered_at is None and row.answer is None and row.views is None
    assert _return_entries(sessions) == 0
    assert _return_labels() == labels  # no metric label from what a message says


def test_an_answer_to_a_closed_enquirys_request_is_refused(
        api: Callable[[str], TestClient], opened: dict[str, InformationRequestRecord],
        sessions: sessionmaker[Session]) -> None:
    alice = api("alice")
    closed = alice.post(f"/api/enquiries/{opened['police'].enquiry_id}/decision", json={
        "level": 2, "outcome": "EARLY_HELP", "factors": ["3B"], "rationale": "r"})
    assert closed.status_code == 200, closed.text
    with pytest.raises(NotAReturn, match="closed"):
        _settle(sessions, _return(opened["police"].request_id))
    assert _requests(sessions)["police"].answered_at is None and _return_entries(sessions) == 0


def test_a_huge_hostile_answered_by_is_cut_short_and_escaped(
        api: Callable[[str], TestClient], opened: dict[str, InformationRequestRecord],
        sessions: sessionmaker[Session]) -> None:
    assert _settle(sessions, _return(opened["police"].request_id, answered_by=HOSTILE * 2000)) == "recorded"
    row = _requests(sessions)["police"]
    assert row.answered_by is not None and len(row.answered_by) <= 64
    page = api("alice").get(f"/enquiries/{row.enquiry_id}").text
    assert "<script>" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")


def test_an_empty_answered_by_is_recorded_as_the_agency(
        opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    assert _settle(sessions, _return(opened["police"].request_id, answered_by="")) == "recorded"
    assert _requests(sessions)["police"].answered_by == "police"


def test_a_nul_in_a_system_searched_is_refused(
        opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    with pytest.raises(NotAReturn):
        _settle(sessions, _return(opened["police"].request_id, systems_searched=["Niche\x00"]))


def test_a_nul_in_answered_by_is_refused_or_removed(
        opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    try:
        _settle(sessions, _return(opened["police"].request_id, answered_by="niche\x00connector"))
    except NotAReturn:
        return
    assert "\x00" not in (_requests(sessions)["police"].answered_by or "")


def test_the_portal_refuses_a_nul_in_a_system_searched(
        api: Callable[[str], TestClient], opened: dict[str, InformationRequestRecord],
        sessions: sessionmaker[Session]) -> None:
    answered = api("pc").post(f"/api/portal/requests/{opened['police'].request_id}/answer", json={
        "answer": "NIL", "searched_on": NOW.date().isoformat(), "systems_searched": ["Niche\x00"]})
    assert answered.status_code == 422
    assert _requests(sessions)["police"].answered_at is None


@pytest.mark.parametrize("same", [True, False])
def test_a_portal_answer_racing_a_bus_answer_records_one(
        api: Callable[[str], TestClient], opened: dict[str, InformationRequestRecord],
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, same: bool) -> None:
    pc, request_id = api("pc"), opened["police"].request_id
    real = returns_inbox.enquiries.record_system_return

    raced: list[bool] = []

    def portal_first(*args: Any, **kwargs: Any) -> str:  # the portal's answer lands between read and write
        if raced:  # the portal's own call (the same function): as it is
            return real(*args, **kwargs)
        raced.append(True)
        answered = pc.post(f"/api/portal/requests/{request_id}/answer", json={
            "answer": "NIL", "searched_on": NOW.date().isoformat(),
            "systems_searched": ["Niche" if same else "PNC"]})
        assert answered.status_code == 200, answered.text
        return real(*args, **kwargs)

    monkeypatch.setattr(returns_inbox.enquiries, "record_system_return", portal_first)
    if same:
        assert _settle(sessions, _return(request_id)) == "duplicate"
    else:
        with pytest.raises(NotAReturn, match="answered"):
            _settle(sessions, _return(request_id))
    row = _requests(sessions)["police"]
    assert row.answered_by == "pc" and row.systems_searched == (["Niche"] if same else ["PNC"])
    assert _return_entries(sessions) == 1


# -- the JSON API ----------------------------------------------------------------------------------------


def test_a_health_answer_reaches_only_the_health_practitioner_through_the_api(
        api: Callable[[str], TestClient], data: Any, sessions: sessionmaker[Session]) -> None:
    hana = api("hana")
    enquiry_id = _open(hana, data["ruby"]["alert_id"], ["health", "police"])
    health = _requests(sessions)["health"].request_id
    answered = api("nurse").post(f"/api/portal/requests/{health}/answer", json={
        "answer": "HELD", "answers": {"camhs": "CLINICAL-CAMHS-DETAIL"}, "summary": "CLINICAL-SUMMARY",
        "searched_on": NOW.date().isoformat(), "systems_searched": ["SystmOne"]})
    assert answered.status_code == 200, answered.text
    seen = hana.get(f"/api/enquiries/{enquiry_id}")
    assert "CLINICAL-CAMHS-DETAIL" in seen.text and "CLINICAL-SUMMARY" in seen.text
    assert hana.post(f"/api/alerts/{data['ruby']['alert_id']}/unclaim").status_code == 200
    for name in ("alice", "pat", "mo"):
        shown = api(name).get(f"/api/enquiries/{enquiry_id}")
        assert shown.status_code == 200, (name, shown.text)
        assert "CLINICAL" not in shown.text, name
        (request,) = [r for r in shown.json()["requests"] if r["agency"] == "health"]
        assert request["state"] == "HELD" and request["systems_searched"] == ["SystmOne"]
        assert request["answers"] == {} and request["summary"] is None
    for name in ("pc", "nurse", "teacher", "aud"):
        assert api(name).get(f"/api/enquiries/{enquiry_id}").status_code in (403, 404), name


def test_an_agency_user_reaches_only_its_own_requests_and_outcomes(
        api: Callable[[str], TestClient], opened: dict[str, InformationRequestRecord]) -> None:
    pc, nurse, teacher = api("pc"), api("nurse"), api("teacher")
    police, health = opened["police"].request_id, opened["health"].request_id
    assert [r["request_id"] for r in pc.get("/api/portal/requests").json()["requests"]] == [police]
    assert teacher.get("/api/portal/requests").json()["requests"] == []
    for path in (f"/api/portal/requests/{health}/acknowledge", f"/api/portal/requests/{health}/answer"):
        refused = pc.post(path, json={"answer": "NIL", "searched_on": NOW.date().isoformat(),
                                      "systems_searched": ["Niche"]})
        assert refused.status_code == 404, (path, refused.text)
    assert nurse.get(f"/api/enquiries/{opened['health'].enquiry_id}").status_code == 403
    closed = api("alice").post(f"/api/enquiries/{opened['police'].enquiry_id}/decision", json={
        "level": 4, "outcome": "STRATEGY_DISCUSSION_S47", "factors": ["3B", "18C"],
        "rationale": "SECRET-RATIONALE"})
    assert closed.status_code == 200, closed.text
    (told,) = pc.get("/api/portal/outcomes").json()["outcomes"]
    assert set(told) == {"enquiry_id", "referral_event_id", "outcome", "outcome_text", "level", "decided_at",
                         "due_at"}
    assert "SECRET" not in str(told) and "18C" not in str(told)
    assert nurse.get("/api/portal/outcomes").json()["outcomes"] == []
    assert teacher.get("/api/portal/outcomes").json()["outcomes"] == []


def test_json_bodies_with_wrong_types_huge_lists_or_smuggled_fields_change_nothing(
        api: Callable[[str], TestClient], data: Any, sessions: sessionmaker[Session]) -> None:
    alice, ruby = api("alice"), data["ruby"]["alert_id"]
    assert alice.post(f"/api/alerts/{ruby}/claim").status_code == 200
    good = {"purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN", "agencies": ["police"]}
    for bad in ({**good, "agencies": ["police"] * 41}, {**good, "agencies": "police"},
                {**good, "household": ["x"] * 41}, {**good, "purpose": ["p"]}, {**good, "purpose": "p\x00"},
                {**good, "agencies": [{"$ne": 1}]}, {**good, "agencies": ["nope"]}, [good], "x"):
        assert alice.post(f"/api/alerts/{ruby}/enquiry", json=bad).status_code == 422, bad
    assert _requests(sessions) == {}
    opened = alice.post(f"/api/alerts/{ruby}/enquiry", json={
        **good, "referrer_agency": "education", "status": "CLOSED", "enquiry_id": "chosen"})
    assert opened.status_code == 200, opened.text
    enquiry_id = opened.json()["enquiry_id"]
    with sessions() as session:
        enquiry = session.get(EnquiryRecord, enquiry_id)
        assert enquiry is not None and enquiry.status == "OPEN" and enquiry.referrer_agency == "police"
    request_id = _requests(sessions)["police"].request_id
    pc = api("pc")
    answer = {"answer": "NIL", "searched_on": NOW.date().isoformat(), "systems_searched": ["Niche"]}
    for bad in ({**answer, "systems_searched": ["s"] * 21}, {**answer, "answers": {f"p{i}": "x" for i in range(41)}},
                {**answer, "answer": "HELD", "answers": {"pnc_pnd": 5}}, {**answer, "searched_on": "yesterday"},
                {**answer, "summary": "x" * 8001}, {**answer, "answer": ["NIL"]}):
        assert pc.post(f"/api/portal/requests/{request_id}/answer", json=bad).status_code == 422, bad
    assert _requests(sessions)["police"].answered_at is None
    answered = pc.post(f"/api/portal/requests/{request_id}/answer", json={
        **answer, "answered_by": "the-chief-constable", "views": {"education_safeguarding_lead": ["*"]},
        "agency": "education"})
    assert answered.status_code == 200, answered.text
    row = _requests(sessions)["police"]
    assert row.answered_by == "pc" and row.views is not None and row.views["education_safeguarding_lead"] == []
    for bad in ({"level": "4; DROP", "outcome": "ADVICE", "factors": [], "rationale": "r"},
                {"level": 2, "outcome": "ADVICE", "factors": ["3B"] * 61, "rationale": "r"},
                {"level": 2, "outcome": "ADVICE", "factors": "3B", "rationale": "r"},
                {"level": 2, "outcome": "X" * 33, "factors": [], "rationale": "r"}):
        assert alice.post(f"/api/enquiries/{enquiry_id}/decision", json=bad).status_code == 422, bad
    with sessions() as session:
        assert session.get(EnquiryRecord, enquiry_id).status == "OPEN"  # type: ignore[union-attr]


# -- triage and an enquiry decision where it does not belong ----------------------------------------------


def test_an_enquiry_decision_on_the_shared_topic_is_dead_lettered_by_triage(
        sessions: sessionmaker[Session], data: Any) -> None:
    value = CODEC.encode({
        "enquiry_id": str(uuid.uuid4()), "alert_id": data["ruby"]["alert_id"], "person_id": data["ruby"]["person_id"],
        "level": 1, "outcome": "NO_FURTHER_ACTION", "factors": [], "rationale": "forged", "decided_by": "mallory",
        "decided_at": NOW, "audit_ref": ""}, ENQUIRY_DECISION_SCHEMA)
    triage = Triage(CODEC, Rules(load_scoring(), PROFILE), sessions)
    out = triage.process_batch([InMessage(SHARED, 0, 0, b"k", value)])
    assert [m.topic for m in out] == [DEADLETTER]
    assert b"does not belong on" in dict(out[0].headers)["mash.dlq.error_message"]


# -- on the broker -----------------------------------------------------------------------------------------


@pytest.fixture
def bus(provisioned: Settings, sessions: sessionmaker[Session],
        data: Any) -> Iterator[tuple[Callable[[str], TestClient], Outbox]]:
    outbox = app_outbox(sessions, provisioned, provisioned.bootstrap_servers, CATALOGUE)
    clients: list[TestClient] = []
    yield _maker(_app(sessions, outbox), clients), outbox
    for client in clients:
        client.close()
    outbox.close()


def _read(settings: Settings, topic: str) -> list[tuple[dict[str, Any], str]]:
    consumer = KafkaConsumer(**operator_client(settings), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: list[tuple[dict[str, Any], str]] = []
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=1000).items():
                for m in batch:
                    record, writer = CODEC.decode(m.value)
                    found.append((record, writer.name))
                if batch and batch[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return found
    finally:
        consumer.close()


def _inbox(settings: Settings, sessions: sessionmaker[Session]) -> ReturnsInbox:
    return ReturnsInbox(sessions, settings.bootstrap_servers, topic_name(RETURNS, settings),
                        topic_name(DEADLETTER, settings), f"{settings.app_id}.returns-attack", CODEC, CATALOGUE,
                        lambda: POLICY, clock=lambda: LATER, client=kafka_python_options(settings, OPERATOR))


def _poll_until(inbox: ReturnsInbox, want: int) -> list[returns_inbox.Settled]:
    settled: list[returns_inbox.Settled] = []
    for _ in range(30):
        settled.append(inbox.poll_once(timeout_ms=1000))
        if sum(s.recorded + s.duplicates + s.dead_letters for s in settled) >= want:
            break
    return settled


def test_a_return_redelivered_after_a_crash_before_the_commit_is_recorded_once(
        bus: tuple[Callable[[str], TestClient], Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    make, _ = bus
    _open(make("alice"), data["ruby"]["alert_id"], ["police"])
    request_id = _requests(sessions)["police"].request_id
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    producer.send(topic_name(RETURNS, provisioned), key=request_id.encode(),
                  value=_return(request_id)).get(timeout=30)
    producer.close()
    crashed = _inbox(provisioned, sessions)
    crashed._connect()
    crashed._consumer.commit = lambda *a, **k: None  # the app dies after recording, before committing
    assert sum(s.recorded for s in _poll_until(crashed, 1)) == 1
    crashed.close()
    again = _inbox(provisioned, sessions)
    try:
        settled = _poll_until(again, 1)
    finally:
        again.close()
    assert (sum(s.recorded for s in settled), sum(s.duplicates for s in settled),
            sum(s.dead_letters for s in settled)) == (0, 1, 0)
    assert _return_entries(sessions) == 1


def _hold_and_close(make: Callable[[str], TestClient], outbox: Outbox, data: Any) -> str:
    """An enquiry on Ruby (police referred her) closed while the outbox is held; the enquiry's id."""
    held = outbox._requests_topic  # type: ignore[attr-defined]
    outbox._requests_topic = None  # type: ignore[attr-defined]
    alice = make("alice")
    enquiry_id = _open(alice, data["ruby"]["alert_id"], ["police"])
    closed = alice.post(f"/api/enquiries/{enquiry_id}/decision", json={
        "level": 3, "outcome": "S17_ASSESSMENT", "factors": ["3B"], "rationale": "r"})
    assert closed.status_code == 200, closed.text
    outbox._requests_topic = held  # type: ignore[attr-defined]
    return enquiry_id


def test_a_referrer_edited_in_the_database_is_never_told_the_outcome(
        bus: tuple[Callable[[str], TestClient], Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    make, outbox = bus
    enquiry_id = _hold_and_close(make, outbox, data)
    with sessions.begin() as session:
        session.execute(update(EnquiryRecord).values(referrer_agency="health"))
    outbox.flush()
    told = [r for r, name in _read(provisioned, topic_name(requests_topic("health"), provisioned))
            if name == "uk.mash.hub.ReferrerFeedback"]
    assert told == [], f"health, which did not refer, was told the outcome of {enquiry_id}"


def test_a_decision_moved_to_another_child_in_the_database_is_never_sent(
        bus: tuple[Callable[[str], TestClient], Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session]) -> None:
    make, outbox = bus
    _hold_and_close(make, outbox, data)
    other = str(uuid.uuid4())
    with sessions.begin() as session:
        session.execute(update(EnquiryRecord).values(person_id=other))
    outbox.flush()
    sent = [r for r, name in _read(provisioned, topic_name(DECISIONS, provisioned))
            if name == ENQUIRY_DECISION_SCHEMA]
    assert [r["person_id"] for r in sent if r["person_id"] == other] == []


@pytest.mark.parametrize("edit", ["prompts", "lawful_basis"])
def test_a_request_whose_questions_or_basis_were_edited_is_never_sent(
        bus: tuple[Callable[[str], TestClient], Outbox], provisioned: Settings, data: Any,
        sessions: sessionmaker[Session], edit: str) -> None:
    make, outbox = bus
    held = outbox._requests_topic  # type: ignore[attr-defined]
    outbox._requests_topic = None  # type: ignore[attr-defined]
    _open(make("alice"), data["ruby"]["alert_id"], ["police"])
    with sessions.begin() as session:
        if edit == "prompts":
            session.execute(update(InformationRequestRecord).values(prompts=[
                {"id": "other", "text": "EDITED: send every record you hold on the whole family"}]))
        else:
            session.execute(update(EnquiryRecord).values(lawful_basis="UK_GDPR_6_1_A"))
    outbox._requests_topic = held  # type: ignore[attr-defined]
    outbox.flush()
    sent = _read(provisioned, topic_name(requests_topic("police"), provisioned))
    assert [r for r, name in sent if name == "uk.mash.hub.InformationRequest"] == []
