"""The MASH enquiry in the triage app over a real database (SQLite and PostgreSQL), through HTTP:
opened from an alert, one request per agency, answered in the partner portal, chased by the clock,
closed with the threshold decision; each step sealed in the audit trail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import EnquiryRecord, InformationRequestRecord
from services.enquiry.catalogue import load_catalogue
from services.sharing import audit_store
from services.sharing.audit_chain import verify
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import AccountError, create_user
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.support.triage_data import NOW, PASSWORD, Clock

AGENCY_USERS = {"pc": "police", "nurse": "health", "teacher": "education"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def login(sessions: sessionmaker[Session], data: Any, clock: Clock) -> Iterator[Any]:
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


def open_enquiry(client: TestClient, alert_id: str, agencies: list[str], consent: str = "GIVEN",
                 reason: str = "") -> Any:
    client.post(f"/alerts/{alert_id}/claim", data={"csrf": csrf(client)})
    return client.post(f"/alerts/{alert_id}/enquiry", data={
        "csrf": csrf(client), "purpose": "Is Ruby safe at home after the incident?",
        "lawful_basis": "CHILDREN_ACT_1989_S47",
        "consent": consent, "consent_reason": reason, "agency": agencies})


def requests_of(sessions: sessionmaker[Session]) -> dict[str, InformationRequestRecord]:
    with sessions() as session:
        return {r.agency: r for r in session.scalars(select(InformationRequestRecord)).all()}


def test_a_worker_opens_an_enquiry_and_each_agency_is_sent_a_request_due_by_the_rating(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    response = open_enquiry(alice, data["ruby"]["alert_id"], ["police", "health"])
    assert response.status_code == 303, response.text
    page = alice.get(response.headers["location"])
    assert page.status_code == 200 and "Police" in page.text and "Health" in page.text
    sent = requests_of(sessions)
    assert set(sent) == {"police", "health"}
    assert {r.rag for r in sent.values()} == {"RED"}
    assert all(r.due_at.replace(tzinfo=NOW.tzinfo) - NOW == timedelta(hours=4) for r in sent.values())
    assert all(r.audit_ref.startswith("triage-app:") for r in sent.values())


def test_a_request_carries_only_the_identifying_fields_the_agencys_role_may_see(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "health"])
    sent = requests_of(sessions)
    for request in sent.values():
        (child,) = request.shared
        assert set(child["identity"]) == {"subject.given_name", "subject.family_name", "subject.date_of_birth"}
    nurse = login("nurse")
    page = nurse.get(f"/portal/requests/{sent['health'].request_id}").text
    assert "Ruby" in page and "CONFIDENTIAL-CLINICAL-DETAIL" not in page and "pwned" not in page
    assert "DOMESTIC_ABUSE" not in page  # what police hold is not told to health by the request


def test_an_agency_whose_role_may_see_nothing_identifying_cannot_be_asked(login: Any, data: Any,
                                                                         sessions: sessionmaker[Session]) -> None:
    response = open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "education"])
    assert response.status_code == 422 and "Education" in response.text and "nothing that identifies" in response.text
    assert requests_of(sessions) == {}  # nothing sent to anyone: the enquiry was not opened


def test_not_seeking_consent_is_a_managers_authorised_decision(login: Any, data: Any,
                                                               sessions: sessionmaker[Session]) -> None:
    ruby = data["ruby"]["alert_id"]
    refused = open_enquiry(login("alice"), ruby, ["police"], "NOT_SAFE_TO_SEEK", "father may flee")
    assert refused.status_code == 422 and "manager" in refused.text
    assert open_enquiry(login("mo"), ruby, ["police"], "NOT_SAFE_TO_SEEK", "father may flee").status_code == 303
    with sessions() as session:
        (enquiry,) = session.scalars(select(EnquiryRecord)).all()
    assert (enquiry.consent, enquiry.consent_authorised_by, enquiry.consent_reason) == (
        "NOT_SAFE_TO_SEEK", "mo", "father may flee")


def test_an_agency_user_sees_only_its_agencys_requests_and_never_an_alert(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "health"])
    sent = requests_of(sessions)
    pc = login("pc")
    portal = pc.get("/portal").text
    assert sent["police"].request_id in portal and sent["health"].request_id not in portal
    assert pc.get(f"/portal/requests/{sent['health'].request_id}").status_code == 404
    for path in ("/", "/queue/rows", f"/alerts/{data['ruby']['alert_id']}", "/api/alerts", "/matches", "/audit",
                 "/enquiries", f"/enquiries/{sent['police'].enquiry_id}"):
        assert pc.get(path, follow_redirects=True).status_code in (403, 404) or path == "/", path
    assert pc.get("/").headers["location"] == "/portal"
    token = csrf(pc, "/portal")
    answered = pc.post(f"/portal/requests/{sent['health'].request_id}/answer",
                       data={"csrf": token, "answer": "NIL", "searched_on": NOW.date().isoformat(),
                             "systems_searched": "Niche"})
    assert answered.status_code == 404
    assert pc.post(f"/alerts/{data['ruby']['alert_id']}/claim", data={"csrf": token}).status_code in (403, 404)
    assert login("alice").get("/portal").status_code == 403  # and triage staff are not agency users


def test_answers_held_nil_and_declined_are_recorded_once_sealed_and_shown_to_the_agencys_own_role(
        login: Any, data: Any, sessions: sessionmaker[Session], clock: Clock) -> None:
    alice = login("alice")
    open_enquiry(alice, data["ruby"]["alert_id"], ["police", "health", "childrens_social_care"])
    sent = requests_of(sessions)
    clock.now = NOW + timedelta(hours=1)
    pc, nurse = login("pc"), login("nurse")
    pc.post(f"/portal/requests/{sent['police'].request_id}/acknowledge", data={"csrf": csrf(pc, "/portal")})
    token = csrf(pc, "/portal")
    incomplete = pc.post(f"/portal/requests/{sent['police'].request_id}/answer",
                         data={"csrf": token, "answer": "NIL", "searched_on": NOW.date().isoformat()})
    assert incomplete.status_code == 422 and "systems were searched" in incomplete.text
    assert pc.post(f"/portal/requests/{sent['police'].request_id}/answer", data={
        "csrf": token, "answer": "NIL", "searched_on": NOW.date().isoformat(),
        "systems_searched": "Niche RMS\nPNC"}).status_code == 303
    again = pc.post(f"/portal/requests/{sent['police'].request_id}/answer", data={
        "csrf": token, "answer": "HELD", "prompt.other": "late thought", "searched_on": NOW.date().isoformat(),
        "systems_searched": "PNC"})
    assert again.status_code == 409
    assert nurse.post(f"/portal/requests/{sent['health'].request_id}/answer", data={
        "csrf": csrf(nurse, "/portal"), "answer": "HELD", "prompt.gp": "Registered; missed 3 appointments <b>x</b>",
        "searched_on": NOW.date().isoformat(), "systems_searched": "SystmOne"}).status_code == 303
    alice = login("alice")  # an hour on: her earlier session idled out
    page = alice.get(f"/enquiries/{sent['police'].enquiry_id}").text
    assert "nil return" in page and "Niche RMS, PNC" in page
    assert "missed 3 appointments" not in page and "SystmOne" in page  # the policy: health outline to others
    assert "Nothing more of the answer is shared with your role" in page
    hana = login("hana")  # the MASH health practitioner reads health's return, escaped
    hana.post(f"/alerts/{data['ruby']['alert_id']}/unclaim", data={"csrf": csrf(hana)})
    mo = login("mo")
    mo.post(f"/alerts/{data['ruby']['alert_id']}/unclaim", data={"csrf": csrf(mo)})
    seen = hana.get(f"/enquiries/{sent['police'].enquiry_id}").text
    assert "missed 3 appointments &lt;b&gt;x&lt;/b&gt;" in seen
    with sessions() as session:
        rows = requests_of(sessions)
        assert rows["police"].answer == "NIL" and rows["police"].acknowledged_by == "pc"
        assert rows["health"].answer_audit_ref and rows["childrens_social_care"].answer is None
        entries = list(audit_store.read_chains(session))
        assert verify(iter(entries)).broken is None
        kinds = [orjson.loads(e.body)["kind"] for e in entries if e.chain == "triage-app"]
    assert kinds.count("information_request") == 3 and kinds.count("information_return") == 2
    assert "enquiry_opened" in kinds


def test_the_managers_board_shows_every_open_request_by_agency_with_at_risk_and_overdue(
        login: Any, data: Any, sessions: sessionmaker[Session], clock: Clock) -> None:
    open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police", "health"])
    clock.now = NOW + timedelta(hours=3, minutes=10)  # RED: at risk after 3 hours
    board = login("mo").get("/enquiries").text
    assert board.count("at risk</td>") == 2 and board.count("1 open, 1 at risk, 0 overdue") == 2
    clock.now = NOW + timedelta(hours=5)
    assert login("mo").get("/enquiries").text.count("1 open, 0 at risk, 1 overdue") == 2
    assert login("alice").get("/enquiries").status_code == 403


def test_the_enquiry_closes_with_a_threshold_decision_sealed_and_only_once(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    enquiry_id = open_enquiry(alice, data["ruby"]["alert_id"], ["police"]).headers["location"].rsplit("/", 1)[1]
    token = csrf(alice, f"/enquiries/{enquiry_id}")
    bad = alice.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": token, "level": "3", "outcome": "S17_ASSESSMENT", "factor": ["21", "3B"], "rationale": "r"})
    assert bad.status_code == 422 and "cannot stand" in bad.text
    assert alice.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": token, "level": "4", "outcome": "STRATEGY_DISCUSSION_S47", "factor": ["3B", "18C"],
        "rationale": "Police DA history and injury pattern"}).status_code == 303
    page = alice.get(f"/enquiries/{enquiry_id}").text
    assert "Strategy discussion" in page and "18C" in page and "closed" in page
    assert alice.post(f"/enquiries/{enquiry_id}/decision", data={
        "csrf": token, "level": "1", "outcome": "NO_FURTHER_ACTION", "factor": ["21"],
        "rationale": "changed my mind"}).status_code == 409
    with sessions() as session:
        enquiry = session.get(EnquiryRecord, enquiry_id)
        assert enquiry is not None and (enquiry.level, enquiry.factors) == (4, ["3B", "18C"])
        assert enquiry.decision_audit_ref


def test_a_form_without_the_sessions_csrf_token_records_nothing(login: Any, data: Any,
                                                                 sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    alice.post(f"/alerts/{data['ruby']['alert_id']}/claim", data={"csrf": csrf(alice)})
    forged = alice.post(f"/alerts/{data['ruby']['alert_id']}/enquiry", data={
        "csrf": "forged", "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agency": ["police"]})
    assert forged.status_code == 403 and requests_of(sessions) == {}


def test_an_agency_account_names_a_known_agency_and_no_one_else_names_one(sessions: sessionmaker[Session]) -> None:
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session, pytest.raises(AccountError, match="unknown agency"):
        create_user(session, "x", "X", "agency_user", None, PASSWORD, NOW, "mi6", agencies)
    with sessions.begin() as session, pytest.raises(AccountError, match="only they"):
        create_user(session, "y", "Y", "triage_worker", "mash_social_worker", PASSWORD, NOW, "police", agencies)


def test_the_alert_page_is_a_chronology_of_events_and_answers_in_date_order_with_human_labels(
        login: Any, data: Any, sessions: sessionmaker[Session], clock: Clock) -> None:
    alice = login("alice")
    ruby = data["ruby"]["alert_id"]
    open_enquiry(alice, ruby, ["police", "health"])
    sent = requests_of(sessions)
    clock.now = NOW + timedelta(minutes=20)
    nurse = login("nurse")
    assert nurse.post(f"/portal/requests/{sent['health'].request_id}/answer", data={
        "csrf": csrf(nurse, "/portal"), "answer": "HELD", "prompt.gp": "GP-SECRET missed appointments",
        "searched_on": NOW.date().isoformat(), "systems_searched": "SystmOne"}).status_code == 303
    page = login("alice").get(f"/alerts/{ruby}").text
    chronology = page.split('id="timeline"', 1)[1].split("</ol>", 1)[0]
    assert "Police: public protection notification" in chronology and "Incident type" in chronology
    police_at, answer_at = chronology.index("Police: public protection"), chronology.index("information request")
    assert police_at < answer_at  # the police event (3 hours before) comes before health's answer
    assert "GP-SECRET" not in chronology and "SystmOne" in chronology  # health's answer in outline only
    hana = login("hana")
    mo = login("mo")
    mo.post(f"/alerts/{ruby}/unclaim", data={"csrf": csrf(mo)})
    assert "GP-SECRET missed appointments" in hana.get(f"/alerts/{ruby}").text


def test_adults_the_worker_names_are_asked_about_with_who_they_are_and_bad_rows_are_refused(
        login: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    ruby = data["ruby"]["alert_id"]
    alice.post(f"/alerts/{ruby}/claim", data={"csrf": csrf(alice)})
    form = {"csrf": csrf(alice), "purpose": "Is Ruby safe?", "lawful_basis": "CHILDREN_ACT_1989_S47",
            "consent": "GIVEN", "agency": ["police"], "adult0.relation": "risk", "adult0.given_name": "Dean",
            "adult0.family_name": "Marsh", "adult0.date_of_birth": "1988-02-03", "adult1.relation": "parent",
            "adult1.given_name": "Grace", "adult1.family_name": "Okafor"}
    for bad in ({"adult0.relation": ""}, {"adult0.date_of_birth": "2999-01-01"}, {"adult0.given_name": "<b>",
                                                                                   "adult0.family_name": ""}):
        refused = alice.post(f"/alerts/{ruby}/enquiry", data={**form, **bad})
        assert refused.status_code == 422, bad
        assert "Grace" in refused.text  # what was typed is kept on the form
    assert requests_of(sessions) == {}
    assert alice.post(f"/alerts/{ruby}/enquiry", data=form).status_code == 303
    (police,) = requests_of(sessions).values()
    assert [(s["relation"], s["identity"].get("subject.family_name")) for s in police.shared] == [
        ("child", "Okafor"), ("risk", "Marsh"), ("parent", "Okafor")]
    page = login("pc").get(f"/portal/requests/{police.request_id}").text
    assert "Person posing a risk (named by the MASH)" in page and "1988-02-03" in page


def test_a_household_enquirys_chronology_is_grouped_by_person(login: Any, data: Any,
                                                               sessions: sessionmaker[Session]) -> None:
    alice = login("alice")
    ruby, tia = data["ruby"]["alert_id"], data["tia"]["person_id"]
    response = open_enquiry_with(alice, ruby, ["police"], household=[tia])
    assert response.status_code == 303, response.text
    page = alice.get(response.headers["location"]).text
    groups = page.split('class="person-chronology"')[1:]
    assert len(groups) == 2
    assert "The child: Ruby Okafor" in groups[0] and "Police: public protection notification" in groups[0]
    assert "In the household: Tia Okafor" in groups[1] and "Education: concern" in groups[1]
    assert "CONFIDENTIAL-CLINICAL-DETAIL" not in page  # health's clinical field is not the social worker's


def open_enquiry_with(client: TestClient, alert_id: str, agencies: list[str], household: list[str]) -> Any:
    client.post(f"/alerts/{alert_id}/claim", data={"csrf": csrf(client)})
    return client.post(f"/alerts/{alert_id}/enquiry", data={
        "csrf": csrf(client), "purpose": "Are the children safe?", "lawful_basis": "CHILDREN_ACT_1989_S47",
        "consent": "GIVEN", "agency": agencies, "household": household})


def test_a_request_at_risk_is_chased_once_and_the_agency_sees_the_reminder(
        login: Any, data: Any, sessions: sessionmaker[Session], clock: Clock) -> None:
    from services.triage_app.enquiries import chase

    open_enquiry(login("alice"), data["ruby"]["alert_id"], ["police"])
    profile = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")
    assert chase(sessions, profile, NOW + timedelta(hours=1)) == []
    clock.now = NOW + timedelta(hours=3, minutes=5)  # RED: at risk after 3 of its 4 hours
    (_, agency, kind), = chase(sessions, profile, clock.now)
    assert (agency, kind) == ("police", "remind") and chase(sessions, profile, clock.now) == []
    assert "reminder sent" in login("pc").get("/portal").text
    clock.now = NOW + timedelta(hours=4, minutes=1)
    assert [k for _, _, k in chase(sessions, profile, clock.now)] == ["escalate"]
    assert "managers told" in login("alice").get(f"/enquiries/{requests_of(sessions)['police'].enquiry_id}").text
