"""The MASH enquiry and partner portal, attacked: a hostile partner-agency user, a careless triage
worker, a concurrent or retrying client. A test that shows a defect is a strict xfail naming it."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertRecord, EnquiryRecord, InformationRequestRecord, TimelineEventRecord, UserRecord
from mash.settings import PROJECT_ROOT
from services.enquiry.catalogue import load_catalogue
from services.enquiry.consent import ConsentDecision
from services.enquiry.returns import checked_return
from services.sharing import audit_store
from services.sharing.audit_chain import verify
from services.sharing.policy import load_policy
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app import enquiries
from services.triage_app.accounts import create_user, load_user
from services.triage_app.actions import Conflict
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.support.triage_data import ALL_MASH, HOSTILE, NAME_FIELDS, NOW, PASSWORD, Clock, alert, shared

AGENCY_USERS = {"pc": "police", "pc2": "police", "nurse": "health", "sw": "childrens_social_care"}
TODAY = NOW.date().isoformat()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def login(sessions: sessionmaker[Session], data: Any, clock: Clock) -> Iterator[Callable[[str], TestClient]]:
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session:
        for name, agency in AGENCY_USERS.items():
            create_user(session, name, name.title(), "agency_user", None, PASSWORD, NOW, agency, agencies)
    app = create_app(AppConfig(sessions, load_scoring(), "test-secret-" * 4, clock=clock,
                               profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")))
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = TestClient(app, follow_redirects=False)
        clients.append(client)
        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        logged = client.post("/login", data={"username": username, "password": PASSWORD, "csrf": token})
        assert logged.status_code == 303
        return client

    yield make
    for client in clients:
        client.close()


def csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path, follow_redirects=True)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def open_enquiry(client: TestClient, alert_id: str, agencies: list[str], consent: str = "GIVEN", reason: str = "",
                 purpose: str = "Is Ruby safe at home?", household: list[str] | None = None,
                 claim: bool = True) -> Any:
    if claim:
        client.post(f"/alerts/{alert_id}/claim", data={"csrf": csrf(client)})
    return client.post(f"/alerts/{alert_id}/enquiry", data={
        "csrf": csrf(client), "purpose": purpose, "lawful_basis": "CHILDREN_ACT_1989_S47",
        "consent": consent, "consent_reason": reason, "agency": agencies, "household": household or []})


def requests_of(sessions: sessionmaker[Session]) -> dict[str, InformationRequestRecord]:
    with sessions() as session:
        return {r.agency: r for r in session.scalars(select(InformationRequestRecord)).all()}


def enquiries_of(sessions: sessionmaker[Session]) -> list[EnquiryRecord]:
    with sessions() as session:
        return list(session.scalars(select(EnquiryRecord)).all())


def nil(token: str, **more: Any) -> dict[str, Any]:
    return {"csrf": token, "answer": "NIL", "searched_on": TODAY, "systems_searched": "Niche", **more}


def chain_kinds(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        entries = list(audit_store.read_chains(session))
        assert verify(iter(entries)).broken is None
        return [orjson.loads(e.body)["kind"] for e in entries if e.chain == "triage-app"]


@pytest.fixture
def opened(login: Any, data: Any, sessions: sessionmaker[Session]) -> dict[str, InformationRequestRecord]:
    response = open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "health"])
    assert response.status_code == 303, response.text
    return requests_of(sessions)


# -- a hostile partner agency ------------------------------------------------------------------------------

def test_another_agencys_request_is_not_found_however_its_id_is_spelled(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    health = opened["health"].request_id
    pc = login("pc")
    token = csrf(pc, "/portal")
    for guess in (health, health.upper(), f" {health}", f"{health} ", health.replace("-", "")):
        assert pc.get(f"/portal/requests/{guess}").status_code in (404, 422), guess
        assert pc.post(f"/portal/requests/{guess}/acknowledge", data={"csrf": token}).status_code in (404, 422)
        assert pc.post(f"/portal/requests/{guess}/answer", data=nil(token)).status_code in (404, 422)
    assert pc.get(f"/portal/requests/{health}x").status_code == 422  # longer than an id
    row = requests_of(sessions)["health"]
    assert row.acknowledged_at is None and row.answered_at is None
    assert "information_return" not in chain_kinds(sessions)


def test_an_agency_user_reaches_no_staff_page_api_or_action(
        login: Any, data: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    ruby = data["ruby"]["alert_id"]
    enquiry_id = opened["police"].enquiry_id
    pc = login("pc")
    token = csrf(pc, "/portal")
    for path in (f"/alerts/{ruby}/enquiry", f"/enquiries/{enquiry_id}", "/enquiries", "/queue/rows", "/matches",
                 f"/audit/events/{data['ruby']['police']['event_id']}",
                 f"/api/alerts/{ruby}", "/api/alerts", "/api/matches", "/audit", f"/alerts/{data['tia']['alert_id']}"):
        assert pc.get(path).status_code in (403, 404), path
    decided = pc.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": token, "level": "1", "outcome": "NO_FURTHER_ACTION", "factor": ["21"], "rationale": "nothing"})
    assert decided.status_code in (403, 404)
    for consent in ("GIVEN", "NOT_SAFE_TO_SEEK", "bogus"):
        again = pc.post(f"/alerts/{data['tia']['alert_id']}/enquiry", data={
            "csrf": token, "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": consent,
            "consent_reason": "r", "agency": ["police"]})
        assert again.status_code in (403, 404), (consent, again.status_code)
    api = pc.post(f"/api/alerts/{data['tia']['alert_id']}/claim", headers={"X-CSRF-Token": token})
    assert api.status_code in (403, 404)
    assert [e.status for e in enquiries_of(sessions)] == ["OPEN"] and len(enquiries_of(sessions)) == 1


def test_the_portal_request_shows_only_what_the_agencys_role_may_see_and_escapes_it(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    """A child with an NHS number only health may see, a withdrawn event, a superseded revision, and
    hostile text in a name: police see the current name only, escaped; health also sees the number."""
    kid = str(uuid.uuid4())
    views_health = {r: [*NAME_FIELDS, "subject.nhs_number"] for r in ["mash_health_practitioner"]}
    views_rest = {r: NAME_FIELDS for r in ALL_MASH if r != "mash_health_practitioner"}
    current = shared(kid, "health.emergency_attendance", "HEALTH", NOW - timedelta(hours=1), {
        "subject": {"given_name": HOSTILE, "family_name": "Current", "date_of_birth": "2014-01-01",
                    "nhs_number": "9434765919"}, "payload": {"safeguarding_concern": True}},
        {**views_health, **views_rest})
    withdrawn = shared(kid, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=30), {
        "subject": {"given_name": "WITHDRAWNNAME", "family_name": "Gone", "date_of_birth": "2014-01-01"},
        "payload": {"incident_type": "DOMESTIC_ABUSE"}}, {r: NAME_FIELDS for r in ALL_MASH})
    old = shared(kid, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=20), {
        "subject": {"given_name": "SUPERSEDEDNAME", "family_name": "Old", "date_of_birth": "2014-01-01"},
        "payload": {"incident_type": "DOMESTIC_ABUSE"}}, {r: NAME_FIELDS for r in ALL_MASH})
    raised = alert(kid, "RED", [current, withdrawn, old], NOW - timedelta(hours=1), NOW + timedelta(hours=1),
                   NOW + timedelta(minutes=30), 100, ["police-high-risk"], ["r"])
    TriageStore(sessions).apply([raised], [], [current, withdrawn, old])
    with sessions.begin() as session:
        session.execute(update(TimelineEventRecord).where(TimelineEventRecord.event_id == withdrawn["event_id"])
                        .values(withdrawn=True))
        session.execute(update(TimelineEventRecord).where(TimelineEventRecord.event_id == old["event_id"])
                        .values(superseded_by=current["event_id"]))
    assert open_enquiry(login("alice"), raised["alert_id"], ["police", "health"],
                        purpose=HOSTILE).status_code == 303
    sent = requests_of(sessions)
    police = login("pc").get(f"/portal/requests/{sent['police'].request_id}").text
    nurse = login("nurse").get(f"/portal/requests/{sent['health'].request_id}").text
    for page in (police, nurse):
        assert "<script>" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
        assert "&lt;script&gt;" in page and "Current" in page
        assert "WITHDRAWNNAME" not in page and "SUPERSEDEDNAME" not in page
    assert "9434765919" not in police and "9434765919" in nurse
    assert "safeguarding_concern" not in police and "DOMESTIC_ABUSE" not in nurse


def test_a_deactivated_agency_account_stops_at_once(login: Any, opened: dict[str, InformationRequestRecord],
                                                    sessions: sessionmaker[Session]) -> None:
    pc = login("pc")
    token = csrf(pc, "/portal")
    with sessions.begin() as session:
        session.execute(update(UserRecord).where(UserRecord.username == "pc").values(active=False))
    police = opened["police"].request_id
    assert police not in pc.get("/portal").text
    assert police not in pc.get(f"/portal/requests/{police}").text
    assert pc.post(f"/portal/requests/{police}/acknowledge", data={"csrf": token}).status_code == 401
    assert pc.post(f"/portal/requests/{police}/answer", data=nil(token)).status_code == 401
    row = requests_of(sessions)["police"]
    assert row.acknowledged_at is None and row.answered_at is None


def test_a_triage_auditor_reaches_no_enquiry_page_or_action(
        login: Any, data: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    aud = login("aud")
    enquiry_id = opened["police"].enquiry_id
    ruby = data["ruby"]["alert_id"]
    for path in (f"/alerts/{ruby}/enquiry", f"/enquiries/{enquiry_id}", "/enquiries", "/portal",
                 f"/portal/requests/{opened['police'].request_id}"):
        assert aud.get(path).status_code in (403, 404), path
    token = csrf(aud, "/audit")
    assert aud.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": token, "level": "1", "outcome": "NO_FURTHER_ACTION", "factor": ["21"],
        "rationale": "r"}).status_code == 403
    assert aud.post(f"/portal/requests/{opened['police'].request_id}/answer", data=nil(token)).status_code == 403
    assert aud.post(f"/alerts/{data['tia']['alert_id']}/enquiry", data={
        "csrf": token, "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agency": ["police"]}).status_code == 403
    assert len(enquiries_of(sessions)) == 1 and enquiries_of(sessions)[0].status == "OPEN"
    assert requests_of(sessions)["police"].answered_at is None


def test_every_enquiry_post_without_the_sessions_token_records_nothing(
        login: Any, data: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    pc, alice, mo = login("pc"), login("alice"), login("mo")
    police = opened["police"].request_id
    enquiry_id = opened["police"].enquiry_id
    foreign = csrf(mo)  # a real token, of another session
    for token in (None, "", "forged", foreign, "ü" * 10):
        form = {} if token is None else {"csrf": token}
        assert pc.post(f"/portal/requests/{police}/acknowledge", data=form).status_code in (403, 422)
        assert pc.post(f"/portal/requests/{police}/answer", data={**nil("x"), **form} if token is not None
                       else {k: v for k, v in nil("").items() if k != "csrf"}).status_code == 403
        assert alice.post(f"/enquiries/{enquiry_id}/decision", data={
            **form, "level": "1", "outcome": "NO_FURTHER_ACTION", "factor": ["21"],
            "rationale": "r"}).status_code in (403, 422)
        assert alice.post(f"/alerts/{data['tia']['alert_id']}/enquiry", data={
            **form, "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
            "agency": ["police"]}).status_code in (403, 422)
    row = requests_of(sessions)["police"]
    assert row.acknowledged_at is None and row.answered_at is None
    assert [e.status for e in enquiries_of(sessions)] == ["OPEN"]


def test_hostile_answers_are_refused_or_escaped(login: Any, opened: dict[str, InformationRequestRecord],
                                                 sessions: sessionmaker[Session], clock: Clock) -> None:
    nurse = login("nurse")
    health = opened["health"].request_id
    token = csrf(nurse, "/portal")
    url = f"/portal/requests/{health}/answer"
    refused = {
        "NUL in a prompt": {"answer": "HELD", "prompt.gp": "a\x00b"},
        "NUL in the systems": {"systems_searched": "Sys\x00One"},
        "a prompt not asked": {"answer": "HELD", "prompt.pnc_pnd": "x"},
        "an over-long answer": {"answer": "HELD", "prompt.gp": "x" * 8001},
        "a malformed date": {"searched_on": "25/11/2026"},
        "an impossible date": {"searched_on": "2026-02-30"},
        "a date in the future": {"searched_on": (NOW + timedelta(days=1)).date().isoformat()},
        "a date before the request": {"searched_on": (NOW - timedelta(days=1)).date().isoformat()},
        "no answer kind": {"answer": ""},
        "a made-up answer kind": {"answer": "MAYBE"},
        "a nil return that holds something": {"prompt.gp": "something"},
        "too many systems": {"systems_searched": "\n".join(f"s{i}" for i in range(21))},
        "too many fields": {f"x{i}": "y" for i in range(70)},
    }
    for what, fields in refused.items():
        response = nurse.post(url, data={**nil(token), **fields})
        assert response.status_code == 422, what
        assert "<script>" not in response.text
    assert requests_of(sessions)["health"].answered_at is None
    echoed = nurse.post(url, data={**nil(token), "answer": "HELD", "prompt.gp": HOSTILE, "searched_on": "x"})
    assert echoed.status_code == 422 and "<script>" not in echoed.text and "&lt;script&gt;" in echoed.text
    assert nurse.post(url, data={**nil(token), "answer": "HELD", "prompt.gp": HOSTILE,
                                 "summary": HOSTILE}).status_code == 303
    hana = login("hana")
    mo = login("mo")
    mo.post(f"/alerts/{requests_of(sessions)['health'].enquiry_id}/unclaim", data={"csrf": csrf(mo)})
    with sessions.begin() as session:  # alice hands the alert to hana
        enquiry = session.get(EnquiryRecord, opened["health"].enquiry_id)
        assert enquiry is not None
        session.execute(update(AlertRecord).where(AlertRecord.alert_id == enquiry.alert_id).values(claimed_by=None))
    page = hana.get(f"/enquiries/{opened['health'].enquiry_id}").text
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert chain_kinds(sessions).count("information_return") == 1


def test_the_answer_is_recorded_once_when_resent(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    """A retrying client (the same form twice) and a colleague's answer afterwards: one answer."""
    pc, pc2 = login("pc"), login("pc2")
    police = opened["police"].request_id
    form = nil(csrf(pc, "/portal"))
    assert [pc.post(f"/portal/requests/{police}/answer", data=form).status_code for _ in range(3)] == [303, 409, 409]
    assert pc2.post(f"/portal/requests/{police}/answer", data={**nil(csrf(pc2, "/portal")), "answer": "HELD",
                                                               "prompt.other": "x"}).status_code == 409
    assert chain_kinds(sessions).count("information_return") == 1


RACING: list[threading.Thread] = []


def _settled(outcome: list[Any]) -> list[Any]:
    """The other writer's outcome, once it has one (a database that serialises the two makes it wait
    for the first to commit)."""
    while RACING:
        RACING.pop().join(timeout=60)
    return outcome


def _interleaved(monkeypatch: pytest.MonkeyPatch, name: str, other: Callable[[], Any]) -> list[Any]:
    """The first call of enquiries.<name> (inside the first writer's transaction, after it has read
    what it checks) waits while `other` runs in a thread (to its end, or until it waits for the
    first writer's lock): the race, every time."""
    real = getattr(enquiries, name)
    outcome: list[Any] = []
    state = {"first": True}

    def run_other() -> None:
        try:
            outcome.append(other())
        except Exception as exc:  # noqa: BLE001 - what the other writer met is the test's evidence
            outcome.append(exc)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if state["first"]:
            state["first"] = False
            thread = threading.Thread(target=run_other)
            RACING.append(thread)
            thread.start()
            thread.join(timeout=3)  # on a database that serialises the two, the other waits for this one
        return real(*args, **kwargs)

    monkeypatch.setattr(enquiries, name, wrapped)
    return outcome


def _sqlite_only(sessions: sessionmaker[Session]) -> None:
    bind = sessions.kw["bind"]
    if bind.dialect.name != "sqlite":
        pytest.skip("the race is SQLite's: PostgreSQL locks the row (FOR UPDATE)")


def test_two_answers_at_the_same_moment_record_one(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _sqlite_only(sessions)
    police = opened["police"].request_id
    with sessions() as session:
        pc, pc2 = load_user(session, "pc"), load_user(session, "pc2")
    assert pc is not None and pc2 is not None
    prompts = enquiries.prompts_of(opened["police"])
    catalogue = load_catalogue()
    nil_return = checked_return("NIL", prompts, {}, "", "", NOW.date(), ["Niche"], NOW.date(), NOW.date())
    held = checked_return("HELD", prompts, {"other": "held"}, "", "", NOW.date(), ["PNC"], NOW.date(), NOW.date())
    policy = load_policy(PROJECT_ROOT / "policies" / "sharing" / "default.yaml")
    other = _interleaved(monkeypatch, "seal_action", lambda: enquiries.record_return(
        sessions, pc2, police, held, catalogue, policy, NOW + timedelta(minutes=1)))
    try:
        enquiries.record_return(sessions, pc, police, nil_return, catalogue, policy, NOW + timedelta(minutes=1))
        first_refused = False
    except Conflict:
        first_refused = True
    assert first_refused or isinstance(_settled(other)[0], Conflict), other
    assert chain_kinds(sessions).count("information_return") == 1


def test_two_enquiries_opened_at_the_same_moment_open_one(
        login: Any, data: Any, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    _sqlite_only(sessions)
    with sessions() as session:
        mo = load_user(session, "mo")
    assert mo is not None
    catalogue = load_catalogue()
    profile = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")
    ruby = data["ruby"]["alert_id"]

    def open_one() -> Any:
        return enquiries.open_enquiry(sessions, mo, ruby, catalogue, profile, ["police"], "p",
                                      "CHILDREN_ACT_1989_S47", ConsentDecision("GIVEN", "", None), [], NOW)

    other = _interleaved(monkeypatch, "_standing", open_one)
    try:
        open_one()
        first_refused = False
    except Conflict:
        first_refused = True
    assert first_refused or isinstance(_settled(other)[0], Conflict), other
    assert [e.status for e in enquiries_of(sessions)] == ["OPEN"]
    assert chain_kinds(sessions).count("enquiry_opened") == 1


def test_an_answer_after_the_enquiry_closed_is_refused(login: Any, opened: dict[str, InformationRequestRecord],
                                                       sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    enquiry_id = opened["police"].enquiry_id
    assert alice.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": csrf(alice), "level": "2", "outcome": "EARLY_HELP", "factor": ["21"],
        "rationale": "r"}).status_code == 303
    pc = login("pc")
    assert pc.post(f"/portal/requests/{opened['police'].request_id}/answer",
                   data=nil(csrf(pc, "/portal"))).status_code == 409
    assert requests_of(sessions)["police"].answered_at is None


# -- a careless triage worker --------------------------------------------------------------------------------

def test_an_enquiry_needs_the_alert_claimed_visible_and_undecided(login: Any, data: Any,
                                                                   sessions: sessionmaker[Session]) -> None:
    alice, pat = login("alice"), login("pat")
    ruby, sam, tia = data["ruby"]["alert_id"], data["sam"]["alert_id"], data["tia"]["alert_id"]
    assert open_enquiry(alice, ruby, ["police"], claim=False).status_code == 403  # not claimed
    pat.post(f"/alerts/{sam}/claim", data={"csrf": csrf(pat)})
    assert open_enquiry(alice, sam, ["police"], claim=False).status_code == 404  # someone else's
    assert alice.get(f"/alerts/{sam}/enquiry").status_code == 404
    with sessions.begin() as session:
        session.execute(update(AlertRecord).where(AlertRecord.alert_id == tia).values(
            status="CLOSED", decided_at=NOW, claimed_by="alice"))
    assert open_enquiry(alice, tia, ["police"], claim=False).status_code in (404, 409)  # decided
    assert open_enquiry(alice, str(uuid.uuid4()), ["police"], claim=False).status_code == 404
    assert open_enquiry(alice, ruby, [], claim=True).status_code == 422
    assert open_enquiry(alice, ruby, ["mi6"]).status_code == 422
    assert open_enquiry(alice, ruby, ["police"], purpose="   ").status_code == 422
    assert open_enquiry(alice, ruby, ["police"], purpose="x" * 2001).status_code == 422
    assert open_enquiry(alice, ruby, ["police"], purpose="a\x00b").status_code == 422
    assert enquiries_of(sessions) == []
    assert open_enquiry(alice, ruby, ["police", "police"]).status_code == 303
    assert len(requests_of(sessions)) == 1
    assert open_enquiry(alice, ruby, ["health"]).status_code == 409  # one open enquiry per alert


def test_the_household_is_only_whom_the_records_name(login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    ruby = data["ruby"]["alert_id"]
    tia, sam = data["tia"]["person_id"], data["sam"]["person_id"]
    assert open_enquiry(alice, ruby, ["police"], household=[sam]).status_code == 422
    assert open_enquiry(alice, ruby, ["police"], household=[data["ruby"]["person_id"]]).status_code == 422
    assert open_enquiry(alice, ruby, ["police"], household=[tia.upper()]).status_code == 422
    assert open_enquiry(alice, ruby, ["police"], household=[tia, sam]).status_code == 422
    assert enquiries_of(sessions) == []
    assert open_enquiry(alice, ruby, ["police"], household=[tia, tia]).status_code == 303
    (request,) = requests_of(sessions).values()
    # Tia's records give police her name but no date of birth: nothing to search on, so she is left out
    assert [s["relation"] for s in request.shared] == ["child"]
    assert "Tia" not in login("pc").get(f"/portal/requests/{request.request_id}").text


def _household_seen_only_by_police(sessions: sessionmaker[Session], data: Any) -> str:
    """Ruby's records name Sam as household, in a field only the police officer's role may see."""
    ruby, sam = data["ruby"]["person_id"], data["sam"]["person_id"]
    event = shared(ruby, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=5), {
        "subject": {"given_name": "Ruby", "family_name": "Okafor", "date_of_birth": "2015-03-02"},
        "payload": {"incident_type": "DOMESTIC_ABUSE"}, "context": {"household_person_ids": [sam]}},
        {"mash_police_officer": [*NAME_FIELDS, "context.household_person_ids"],
         **{r: NAME_FIELDS for r in ALL_MASH if r != "mash_police_officer"}})
    TriageStore(sessions).apply([], [], [event])
    return sam


def test_a_worker_cannot_add_a_household_member_named_only_where_her_role_cannot_see(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    sam = _household_seen_only_by_police(sessions, data)
    response = open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police"], household=[sam])
    assert response.status_code == 422
    assert enquiries_of(sessions) == []


def test_the_enquiry_form_lists_no_household_member_the_workers_role_cannot_see(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    sam = _household_seen_only_by_police(sessions, data)
    alice = login("alice")
    alice.post(f"/alerts/{data['ruby']['alert_id']}/claim", data={"csrf": csrf(alice)})
    page = alice.get(f"/alerts/{data['ruby']['alert_id']}/enquiry")
    assert page.status_code == 200 and data["tia"]["person_id"] in page.text
    assert sam not in page.text


def test_not_seeking_consent_is_refused_to_a_worker_however_spelled(login: Any, data: Any,
                                                                     sessions: sessionmaker[Session]) -> None:
    alice, mo = login("alice"), login("mo")
    ruby = data["ruby"]["alert_id"]
    for consent, reason in (("NOT_SAFE_TO_SEEK", "flee"), ("not_safe_to_seek", "flee"), (" NOT_SAFE_TO_SEEK", "f"),
                            ("NOT_SOUGHT", "f"), ("REFUSED", "  "), ("", "")):
        response = open_enquiry(alice, ruby, ["police"], consent, reason)
        assert response.status_code == 422, consent
    assert open_enquiry(mo, ruby, ["police"], "NOT_SAFE_TO_SEEK", "   ").status_code == 422
    assert open_enquiry(mo, ruby, ["police"], "NOT_SAFE_TO_SEEK", "x" * 4001).status_code == 422
    assert enquiries_of(sessions) == []


def test_a_threshold_decision_with_bad_codes_is_refused_and_the_enquiry_stays_open(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    enquiry_id = opened["police"].enquiry_id
    token = csrf(alice)
    good = {"csrf": token, "level": "3", "outcome": "EARLY_HELP", "factor": ["3B"], "rationale": "why"}
    for change in ({"level": "abc"}, {"level": "99"}, {"level": "-1"}, {"level": ""}, {"outcome": "NUKE"},
                   {"outcome": ""}, {"factor": ["99Z"]}, {"factor": []}, {"factor": ["21", "3B"]},
                   {"factor": ["3B\x00"]}, {"rationale": "   "}, {"rationale": "x" * 8001},
                   {"rationale": "a\x00b"}, {"factor": ["3B"] * 61}):
        response = alice.post(f"/enquiries/{enquiry_id}/decision", data={**good, **change})
        assert response.status_code == 422, change
    assert enquiries_of(sessions)[0].status == "OPEN"
    pat = login("pat")  # not his alert: not found
    assert pat.post(f"/enquiries/{enquiry_id}/decision", data={**good, "csrf": csrf(pat)}).status_code == 404
    assert alice.post(f"/enquiries/{enquiry_id}/decision", data={**good, "factor": [" 3b "]}).status_code == 303
    (enquiry,) = enquiries_of(sessions)
    assert enquiry.status == "CLOSED" and enquiry.factors == ["3B"]
    kinds = chain_kinds(sessions)
    assert kinds.count("enquiry_decision") == 1 and kinds.count("information_request") == 2


def test_an_answer_is_read_only_by_the_agencys_own_mash_role(
        login: Any, data: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    nurse = login("nurse")
    assert nurse.post(f"/portal/requests/{opened['health'].request_id}/answer", data={
        **nil(csrf(nurse, "/portal")), "answer": "HELD", "prompt.gp": "SECRET-GP-NOTE",
        "summary": "SECRET-SUMMARY"}).status_code == 303
    enquiry_id = opened["health"].enquiry_id
    for user in ("alice", "mo", "pat"):
        page = login(user).get(f"/enquiries/{enquiry_id}")
        assert "SECRET" not in page.text, user
    assert "SECRET" not in login("pc").get("/portal").text


# -- the clock and what stays open ---------------------------------------------------------------------------

def test_a_search_made_after_midnight_in_summer_time_can_be_answered_today(
        login: Any, data: Any, sessions: sessionmaker[Session], clock: Clock) -> None:
    clock.now = datetime(2027, 6, 14, 22, 30, tzinfo=UTC)  # 23:30 BST on the 14th
    assert open_enquiry(login("mo"), data["ruby"]["alert_id"], ["police"]).status_code == 303
    clock.now = datetime(2027, 6, 14, 23, 30, tzinfo=UTC)  # 00:30 BST on the 15th
    pc = login("pc")
    police = requests_of(sessions)["police"].request_id
    response = pc.post(f"/portal/requests/{police}/answer", data=nil(csrf(pc, "/portal"), searched_on="2027-06-15"))
    assert response.status_code == 303, re.findall(r'id="error">([^<]*)', response.text)


def test_a_declined_answer_cannot_record_a_search_date_in_the_future(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session]) -> None:
    pc = login("pc")
    pc.post(f"/portal/requests/{opened['police'].request_id}/answer", data={
        **nil(csrf(pc, "/portal")), "answer": "DECLINED", "declined_reason": "no lawful basis given",
        "searched_on": "2999-01-01"})
    assert requests_of(sessions)["police"].searched_on is None or \
        requests_of(sessions)["police"].searched_on.isoformat() != "2999-01-01"


def test_a_closed_enquirys_unanswered_requests_leave_the_board(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session], clock: Clock) -> None:
    alice = login("alice")
    assert alice.post(f"/enquiries/{opened['police'].enquiry_id}/decision", data={
        "csrf": csrf(alice), "level": "2", "outcome": "EARLY_HELP", "factor": ["21"],
        "rationale": "r"}).status_code == 303
    clock.now = NOW + timedelta(days=3)
    board = login("mo").get("/enquiries").text
    assert opened["police"].request_id not in board and "overdue" not in board.split("<main", 1)[-1].replace(
        "0 overdue", "")


def test_a_closed_enquirys_request_is_not_offered_for_answer_in_the_portal(
        login: Any, opened: dict[str, InformationRequestRecord], sessions: sessionmaker[Session], clock: Clock) -> None:
    alice = login("alice")
    alice.post(f"/enquiries/{opened['police'].enquiry_id}/decision", data={
        "csrf": csrf(alice), "level": "2", "outcome": "EARLY_HELP", "factor": ["21"], "rationale": "r"})
    clock.now = NOW + timedelta(days=3)
    page = login("pc").get(f"/portal/requests/{opened['police'].request_id}").text
    assert 'id="send-answer"' not in page


def test_an_acknowledgement_is_sealed(login: Any, opened: dict[str, InformationRequestRecord],
                                      sessions: sessionmaker[Session]) -> None:
    before = len(chain_kinds(sessions))
    pc = login("pc")
    assert pc.post(f"/portal/requests/{opened['police'].request_id}/acknowledge",
                   data={"csrf": csrf(pc, "/portal")}).status_code == 303
    assert requests_of(sessions)["police"].acknowledged_by == "pc"
    assert len(chain_kinds(sessions)) > before


def test_a_request_names_no_household_member_its_agency_cannot_identify(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    ruby, other = data["ruby"]["person_id"], str(uuid.uuid4())
    not_health = [r for r in ALL_MASH if r != "mash_health_practitioner"]
    theirs = shared(other, "police.public_protection_notification", "POLICE", NOW - timedelta(hours=2), {
        "subject": {"given_name": "Zed", "family_name": "Okafor", "date_of_birth": "2017-01-01"},
        "payload": {"incident_type": "DOMESTIC_ABUSE"}}, {r: NAME_FIELDS for r in not_health})
    naming = shared(ruby, "police.public_protection_notification", "POLICE", NOW - timedelta(minutes=5), {
        "subject": {"given_name": "Ruby", "family_name": "Okafor", "date_of_birth": "2015-03-02"},
        "payload": {"incident_type": "DOMESTIC_ABUSE"}, "context": {"household_person_ids": [other]}},
        {r: [*NAME_FIELDS, "context.household_person_ids"] for r in ALL_MASH})
    TriageStore(sessions).apply([], [], [theirs, naming])
    assert open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "health"],
                        household=[other]).status_code == 303
    sent = requests_of(sessions)
    assert [s["identity"]["subject.given_name"] for s in sent["police"].shared] == ["Ruby", "Zed"]
    assert [s["person_id"] for s in sent["health"].shared] == [ruby]
