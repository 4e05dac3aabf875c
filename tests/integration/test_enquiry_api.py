"""The MASH enquiry and partner portal through the JSON API (SQLite and PostgreSQL): the same rules
as the pages, for scripts and other systems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from services.enquiry.catalogue import load_catalogue
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import create_user
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.support.triage_data import NOW, PASSWORD, Clock


@pytest.fixture
def api(sessions: sessionmaker[Session], data: Any) -> Iterator[Any]:
    agencies = tuple(load_catalogue().agencies)
    with sessions.begin() as session:
        create_user(session, "pc", "PC", "agency_user", None, PASSWORD, NOW, "police", agencies)
        create_user(session, "nurse", "Nurse", "agency_user", None, PASSWORD, NOW, "health", agencies)
    app = create_app(AppConfig(sessions, load_scoring(), "api-secret-" * 4, clock=Clock(),
                               profile=load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")))
    clients: list[TestClient] = []

    def make(username: str) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        token = client.post("/api/login", json={"username": username, "password": PASSWORD}).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        return client

    yield make
    for client in clients:
        client.close()


def test_an_enquiry_runs_end_to_end_through_the_api_and_the_referrer_is_told_only_the_outcome(
        api: Any, data: Any) -> None:
    alice, pc, nurse = api("alice"), api("pc"), api("nurse")
    ruby = data["ruby"]["alert_id"]
    assert alice.post(f"/api/alerts/{ruby}/claim").status_code == 200
    opened = alice.post(f"/api/alerts/{ruby}/enquiry", json={
        "purpose": "Is Ruby safe?", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agencies": ["police", "health"]})
    assert opened.status_code == 200, opened.text
    enquiry_id = opened.json()["enquiry_id"]
    (police,) = pc.get("/api/portal/requests").json()["requests"]
    assert police["subjects"][0]["identity"]["subject.given_name"] == "Ruby"
    assert pc.post(f"/api/portal/requests/{police['request_id']}/acknowledge").status_code == 200
    held = pc.post(f"/api/portal/requests/{police['request_id']}/answer", json={
        "answer": "HELD", "answers": {"domestic_abuse": "two incidents"}, "searched_on": NOW.date().isoformat(),
        "systems_searched": ["Niche"]})
    assert held.status_code == 200, held.text
    (health,) = nurse.get("/api/portal/requests").json()["requests"]
    assert nurse.post(f"/api/portal/requests/{health['request_id']}/answer", json={
        "answer": "NIL", "systems_searched": []}).status_code == 422
    assert nurse.post(f"/api/portal/requests/{health['request_id']}/answer", json={
        "answer": "NIL", "searched_on": NOW.date().isoformat(), "systems_searched": ["SystmOne"]}).status_code == 200
    shown = {r["agency"]: r for r in alice.get(f"/api/enquiries/{enquiry_id}").json()["requests"]}
    assert shown["police"]["answers"] == {"Domestic abuse history at the child's addresses (incidents, DASH risk "
                                          "levels, MARAC)": "two incidents"}
    assert shown["health"]["state"] == "NIL"
    closed = alice.post(f"/api/enquiries/{enquiry_id}/decision", json={
        "level": 3, "outcome": "S17_ASSESSMENT", "factors": ["3B"], "rationale": "SECRET-RATIONALE"})
    assert closed.status_code == 200, closed.text
    (told,) = pc.get("/api/portal/outcomes").json()["outcomes"]
    assert (told["outcome"], told["level"]) == ("S17_ASSESSMENT", 3) and "SECRET" not in str(told)
    assert nurse.get("/api/portal/outcomes").json()["outcomes"] == []  # health did not refer
    assert "Child and family assessment" in pc.get("/portal").text


def test_the_api_keeps_agency_users_and_triage_staff_apart(api: Any, data: Any) -> None:
    alice, pc = api("alice"), api("pc")
    ruby = data["ruby"]["alert_id"]
    alice.post(f"/api/alerts/{ruby}/claim")
    enquiry_id = alice.post(f"/api/alerts/{ruby}/enquiry", json={
        "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agencies": ["police"]}).json()["enquiry_id"]
    assert pc.get(f"/api/enquiries/{enquiry_id}").status_code == 403
    assert pc.post(f"/api/alerts/{ruby}/enquiry", json={
        "purpose": "p", "lawful_basis": "CHILDREN_ACT_1989_S47", "consent": "GIVEN",
        "agencies": ["police"]}).status_code == 403
    assert alice.get("/api/portal/requests").status_code == 403
    assert alice.get("/api/portal/outcomes").status_code == 403
    del pc.headers["X-CSRF-Token"]
    request_id = pc.get("/api/portal/requests").json()["requests"][0]["request_id"]
    assert pc.post(f"/api/portal/requests/{request_id}/acknowledge").status_code == 403
