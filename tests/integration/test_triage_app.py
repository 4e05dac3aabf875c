"""The triage app over a real database (SQLite and PostgreSQL), through its HTTP interface."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertActionRecord, TriageDecisionRecord
from services.sharing import audit_store
from services.sharing.audit_chain import verify
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from services.triage_store.store import TriageStore
from tests.support.triage_data import HOSTILE, NOW, PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client_for(sessions: sessionmaker[Session], data: Any, clock: Clock) -> Iterator[Any]:
    app = create_app(AppConfig(sessions, load_scoring(), "test-secret-" * 4, clock=clock,
                               profile=load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml")))
    clients: list[TestClient] = []

    def make(username: str | None = None) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        if username:
            response = client.post("/api/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    yield make
    for client in clients:
        client.close()


def test_nothing_is_served_without_logging_in(client_for: Any, data: Any) -> None:
    client = client_for()
    ruby = data["ruby"]["alert_id"]
    for path in ("/", f"/alerts/{ruby}", "/api/alerts", f"/api/alerts/{ruby}", "/queue/rows", "/audit"):
        assert client.get(path).status_code == 401, path
    assert client.post(f"/api/alerts/{ruby}/claim").status_code == 401
    assert "Ruby" not in client.get(f"/alerts/{ruby}").text


def test_the_queue_puts_red_first_and_flags_at_risk_and_breached(client_for: Any, data: Any) -> None:
    body = client_for("alice").get("/api/alerts").json()
    assert [a["rag"] for a in body["alerts"]] == ["RED", "AMBER", "GREEN"]
    assert [a["clock"] for a in body["alerts"]] == ["AT_RISK", "BREACHED", "ON_TIME"]
    assert (body["total"], body["at_risk"], body["breached"]) == (3, 1, 1)
    assert body["alerts"][0]["child"] == "Ruby Okafor (born 2015-03-02)"


def test_a_form_post_without_the_csrf_token_is_refused(client_for: Any, data: Any) -> None:
    client = client_for()
    assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 422
    assert client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": "forged"}).status_code == 403
    api = client_for("alice")
    del api.headers["X-CSRF-Token"]
    assert api.post(f"/api/alerts/{data['ruby']['alert_id']}/claim").status_code == 403


def test_log_in_through_the_form_then_out(client_for: Any, data: Any) -> None:
    client = client_for()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token},
                           follow_redirects=False)
    assert response.status_code == 303
    queue = client.get("/")
    assert queue.status_code == 200 and "Ruby Okafor" in queue.text
    token = re.search(r'name="csrf" value="([^"]+)"', queue.text).group(1)  # type: ignore[union-attr]
    client.post("/logout", data={"csrf": token})
    assert client.get("/").status_code == 401


def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(client_for: Any, data: Any, clock: Clock) -> None:
    client = client_for()
    for _ in range(5):
        assert client.post("/api/login", json={"username": "pat", "password": "wrong-password"}).status_code == 401
    right = {"username": "pat", "password": PASSWORD}
    assert client.post("/api/login", json=right).status_code == 401  # locked, even with the right password
    assert client.post("/api/login", json={"username": "nobody", "password": PASSWORD}).status_code == 401
    clock.now = NOW + timedelta(minutes=16)
    assert client.post("/api/login", json=right).status_code == 200


def test_each_role_sees_only_its_view_of_the_childs_events(client_for: Any, data: Any) -> None:
    ruby = data["ruby"]["alert_id"]
    social = client_for("alice").get(f"/alerts/{ruby}").text
    health = client_for("hana").get(f"/alerts/{ruby}").text
    auditor = client_for("aud").get(f"/alerts/{ruby}").text
    assert "CONFIDENTIAL-CLINICAL-DETAIL" in health
    assert "CONFIDENTIAL-CLINICAL-DETAIL" not in social and "payload.presenting_complaint" not in social
    assert "payload.safeguarding_concern" in social
    assert "Okafor" not in auditor and "DOMESTIC_ABUSE" not in auditor  # the auditor reads the audit, not records
    api = client_for("alice").get(f"/api/alerts/{ruby}").json()
    health_event = next(e for e in api["timeline"] if e["agency"] == "HEALTH")
    assert set(health_event["fields"]) == {"subject.given_name", "subject.family_name", "subject.date_of_birth",
                                           "payload.safeguarding_concern"}


def test_a_reason_resting_on_a_withheld_field_is_not_shown(client_for: Any, data: Any) -> None:
    ruby = data["ruby"]["alert_id"]
    social = client_for("alice").get(f"/api/alerts/{ruby}").json()
    health = client_for("hana").get(f"/api/alerts/{ruby}").json()
    assert not any("injury pattern" in r for r in social["reasons"]) and social["reasons_withheld"] == 1
    assert any("injury pattern" in r for r in health["reasons"]) and health["reasons_withheld"] == 0


def test_hostile_text_is_shown_escaped(client_for: Any, data: Any) -> None:
    page = client_for("alice").get(f"/alerts/{data['ruby']['alert_id']}")
    assert HOSTILE not in page.text and "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_claim_then_decide_records_an_audited_decision_and_closes_the_alert(
        client_for: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    alice, ruby = client_for("alice"), data["ruby"]["alert_id"]
    url = f"/api/alerts/{ruby}"
    seen = alice.get(url).json()["revision"]
    decision = {"outcome": "STRATEGY_DISCUSSION_S47", "rationale": "High-risk DA and an injury pattern <b>now</b>.",
                "alert_revision": seen}
    assert alice.post(f"{url}/decision", json=decision).status_code == 403  # claim first
    assert alice.post(f"{url}/claim").status_code == 200
    assert client_for("pat").post(f"{url}/claim").status_code == 404  # not on pat's queue any more
    assert client_for("pat").get(url).status_code == 404
    assert alice.post(f"{url}/decision", json={**decision, "rationale": "  "}).status_code == 422
    assert alice.post(f"{url}/decision", json={**decision, "outcome": "MAYBE"}).status_code == 422
    assert alice.post(f"{url}/decision", json={k: v for k, v in decision.items() if k != "alert_revision"}
                      ).status_code == 422  # a decision names the revision it was made on
    stale = alice.post(f"{url}/decision", json={**decision, "alert_revision": seen - 1 if seen > 1 else seen + 1})
    assert stale.status_code == 409 and "changed while you were looking at it" in stale.json()["detail"]
    with sessions() as session:
        assert session.scalars(select(TriageDecisionRecord)).all() == []  # nothing recorded on a stale view
    response = alice.post(f"{url}/decision", json=decision)
    assert response.status_code == 200 and "triage-app:1" in response.json()["result"]
    assert alice.post(f"{url}/decision", json=decision).status_code == 409
    assert ruby not in [a["alert_id"] for a in alice.get("/api/alerts").json()["alerts"]]
    with sessions() as session:
        (row,) = session.scalars(select(TriageDecisionRecord)).all()
        assert (row.decided_by, row.outcome, row.published_at) == ("alice", "STRATEGY_DISCUSSION_S47", None)
        result = verify(audit_store.read_chains(session))
        assert result.broken is None and result.heads["triage-app"].seq == 1
        assert [a.action for a in session.scalars(select(AlertActionRecord).order_by(AlertActionRecord.id))] == [
            "claimed", "decided"]
    page = client_for("mo").get(f"/alerts/{ruby}").text
    assert "&lt;b&gt;now&lt;/b&gt;" in page and "strategy discussion" in page


def test_an_auditor_is_kept_to_the_audit_trail_and_shown_no_childs_record(client_for: Any, data: Any) -> None:
    """The auditor "reads the audit, not children's records": the queue, an alert (page or API) and the
    possible matches are refused (403, saying where to go); the home page leads to the audit trail."""
    ruby = data["ruby"]["alert_id"]
    auditor = client_for("aud")
    for path in (f"/alerts/{ruby}", "/queue/rows", "/matches", "/api/alerts", f"/api/alerts/{ruby}", "/api/matches"):
        answer = auditor.get(path)
        assert answer.status_code == 403 and "audit trail" in answer.text, (path, answer.status_code)
        assert "Okafor" not in answer.text and "RED" not in answer.text, path
    home = auditor.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"].endswith("/audit")
    assert client_for("mo").get(f"/alerts/{ruby}").status_code == 200  # a manager still works the queue


def test_roles_are_enforced_on_every_action(client_for: Any, data: Any) -> None:
    ruby, sam = data["ruby"]["alert_id"], data["sam"]["alert_id"]
    auditor, worker, manager = client_for("aud"), client_for("alice"), client_for("mo")
    assert auditor.post(f"/api/alerts/{ruby}/claim").status_code == 403
    assert worker.post(f"/api/alerts/{ruby}/assign", json={"to": "pat"}).status_code == 403
    assert worker.get("/audit").status_code == 403 and auditor.get("/audit").status_code == 200
    assert manager.post(f"/api/alerts/{sam}/assign", json={"to": "pat"}).status_code == 200
    assert manager.post(f"/api/alerts/{sam}/assign", json={"to": "aud"}).status_code == 409
    assert sam not in [a["alert_id"] for a in worker.get("/api/alerts").json()["alerts"]]
    assert sam in [a["alert_id"] for a in client_for("pat").get("/api/alerts").json()["alerts"]]
    assert sam in [a["alert_id"] for a in manager.get("/api/alerts").json()["alerts"]]  # sees every alert
    assert worker.post(f"/api/alerts/{sam}/unclaim").status_code == 404


def test_children_of_one_household_are_cross_referenced(client_for: Any, data: Any) -> None:
    body = client_for("alice").get(f"/api/alerts/{data['ruby']['alert_id']}").json()
    assert [h["alert_id"] for h in body["household"]] == [data["tia"]["alert_id"]]


def test_the_api_is_described_by_openapi(client_for: Any, data: Any) -> None:
    spec = client_for().get("/api/openapi.json").json()
    assert {"/api/login", "/api/alerts", "/api/alerts/{alert_id}", "/api/alerts/{alert_id}/claim",
            "/api/alerts/{alert_id}/decision", "/api/alerts/{alert_id}/assign"} <= set(spec["paths"])


def test_a_person_may_lower_a_rating_on_the_record_and_only_new_urgency_from_the_hub_overrides_it(
        client_for: Any, data: Any, sessions: sessionmaker[Session]) -> None:
    ruby, sam = data["ruby"], data["sam"]
    mo = client_for("mo")
    change = {"rag": "AMBER", "rationale": "Perpetrator in custody; the child is safe tonight."}
    assert client_for("alice").post(f"/api/alerts/{ruby['alert_id']}/rating", json=change).status_code == 403
    assert mo.post(f"/api/alerts/{ruby['alert_id']}/rating", json={**change, "rationale": ""}).status_code == 422
    response = mo.post(f"/api/alerts/{ruby['alert_id']}/rating", json=change)
    assert response.status_code == 200 and "triage-app:1" in response.json()["result"]
    lowered = mo.get(f"/api/alerts/{ruby['alert_id']}").json()
    assert lowered["rag"] == "AMBER"
    assert lowered["due_at"] == "2026-11-25T15:00:00+00:00"  # clock started 08:20: six working hours from 09:00
    store = TriageStore(sessions)
    store.apply([{**ruby, "revision": 2}], [])  # the hub, still RED, re-sends as an event attaches
    assert mo.get(f"/api/alerts/{ruby['alert_id']}").json()["rag"] == "AMBER"  # the person's rating stands
    assert mo.post(f"/api/alerts/{sam['alert_id']}/rating", json={**change, "rag": "GREEN"}).status_code == 200
    store.apply([{**sam, "revision": 2, "rag": "RED"}], [])  # new information: the hub now rates it RED
    assert mo.get(f"/api/alerts/{sam['alert_id']}").json()["rag"] == "RED"
    with sessions() as session:
        assert verify(audit_store.read_chains(session)).heads["triage-app"].seq == 2
        actions = [a.detail for a in session.scalars(select(AlertActionRecord).where(
            AlertActionRecord.action == "re-rated"))]
    assert actions[0] == "RED to AMBER: Perpetrator in custody; the child is safe tonight."


def test_the_auditor_reads_why_an_event_was_shared_and_app_entries_do_not_break_it(
        client_for: Any, data: Any) -> None:
    ruby = data["ruby"]
    alice = client_for("alice")
    alice.post(f"/api/alerts/{ruby['alert_id']}/claim")
    seen = alice.get(f"/api/alerts/{ruby['alert_id']}").json()["revision"]
    alice.post(f"/api/alerts/{ruby['alert_id']}/decision",
               json={"outcome": "EARLY_HELP", "rationale": "Agreed.", "alert_revision": seen})
    auditor = client_for("aud")
    page = auditor.get(f"/audit/events/{ruby['police']['event_id']}")
    assert page.status_code == 200 and "No sharing decisions are recorded for this event." in page.text
    assert auditor.get(f"/audit/events/{ruby['alert_id']}").status_code == 200  # the app's own entry is skipped
    audit = auditor.get("/audit")
    assert audit.status_code == 200 and "Agreed." in audit.text and "triage-app:1" in audit.text
    assert alice.get(f"/audit/events/{ruby['alert_id']}").status_code == 403
