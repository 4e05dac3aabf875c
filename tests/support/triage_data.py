"""Alerts and shared events written straight into the triage store, shaped exactly as the hub's
`mash.alerts.v1` and `mash.shared.v1` records, for tests of the triage app."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from services.triage_app.accounts import create_user
from services.triage_store.store import TriageStore

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday morning
PASSWORD = "correct horse battery staple"
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
USERS = {  # username -> (app role, sharing role)
    "alice": ("triage_worker", "mash_social_worker"),
    "pat": ("triage_worker", "mash_police_officer"),
    "hana": ("triage_worker", "mash_health_practitioner"),
    "mo": ("triage_manager", "triage_manager"),
    "aud": ("auditor", None),
}
ALL_MASH = ["mash_social_worker", "mash_police_officer", "mash_health_practitioner", "triage_manager"]
NAME_FIELDS = ["subject.given_name", "subject.family_name", "subject.date_of_birth"]


class Clock:
    """The app's clock in a test: set `now` to move it."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def add_users(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        for name, (role, sharing) in USERS.items():
            create_user(session, name, name.title(), role, sharing, PASSWORD, NOW)


def shared(person_id: str, event_type: str, agency: str, occurred: datetime, values: dict[str, Any],
           views: dict[str, list[str]], sensitivity: str = "STANDARD") -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "person_id": person_id, "event_type": event_type,
            "source_agency": agency, "occurred_at": ms(occurred), "received_at": ms(occurred) + 60_000,
            "sensitivity": sensitivity, "consent": "NOT_SOUGHT", "policy_version": "f" * 64,
            "audit_ref": "p0:1", "values": json.dumps(values),
            "views": [{"role": r, "outcome": "SHARE_FIELDS", "fields": f} for r, f in views.items()]}


def alert(person_id: str, rag: str, events: list[dict[str, Any]], opened: datetime, due: datetime,
          at_risk: datetime, score: int, indicators: list[str], reasons: list[str]) -> dict[str, Any]:
    return {"alert_id": str(uuid.uuid4()), "person_id": person_id, "revision": 1, "status": "OPEN", "rag": rag,
            "reasons": reasons, "agencies": sorted({e["source_agency"] for e in events}),
            "event_ids": [e["event_id"] for e in events], "opened_at": ms(opened), "updated_at": ms(opened),
            "score": score, "indicators": indicators, "scoring_version": "s" * 64, "profile": "rapid 2h / 6h / 24h",
            "clock_started_at": ms(opened), "at_risk_at": ms(at_risk), "due_at": ms(due)}


def seed(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    """Three children: Ruby (RED, police and health, at risk), Sam (AMBER, breached), Tia (GREEN).
    Ruby's police summary carries hostile text; her health event is special category: only the
    health practitioner sees its clinical fields, the others its safeguarding flag."""
    ruby, sam, tia = (str(uuid.uuid4()) for _ in range(3))
    subject = {"given_name": "Ruby", "family_name": "Okafor", "date_of_birth": "2015-03-02"}
    police = shared(ruby, "police.public_protection_notification", "POLICE", NOW - timedelta(hours=3), {
        "subject": subject, "payload": {"incident_type": "DOMESTIC_ABUSE", "children_present": True,
                                        "risk_grading": "HIGH", "summary": HOSTILE},
        "context": {"household_person_ids": [tia]}},
        {r: [*NAME_FIELDS, "payload.incident_type", "payload.children_present", "payload.risk_grading",
             "payload.summary", "context.household_person_ids"] for r in ALL_MASH})
    health = shared(ruby, "health.emergency_attendance", "HEALTH", NOW - timedelta(hours=2), {
        "subject": subject, "payload": {"presenting_complaint": "CONFIDENTIAL-CLINICAL-DETAIL",
                                        "safeguarding_concern": True, "injury_pattern_concern": True}},
        {"mash_health_practitioner": [*NAME_FIELDS, "payload.presenting_complaint", "payload.safeguarding_concern",
                                      "payload.injury_pattern_concern"],
         "mash_social_worker": [*NAME_FIELDS, "payload.safeguarding_concern"],
         "triage_manager": [*NAME_FIELDS, "payload.safeguarding_concern"]},
        sensitivity="SPECIAL_CATEGORY")
    school = shared(sam, "education.concern", "EDUCATION", NOW - timedelta(days=2), {
        "subject": {"given_name": "Sam", "family_name": "Reid", "date_of_birth": "2012-07-19"},
        "payload": {"concern_kind": "CHILD_MISSING_EDUCATION"}}, {r: [*NAME_FIELDS, "payload.concern_kind"]
                                                                 for r in ALL_MASH})
    care = shared(sam, "social_care.case_event", "SOCIAL_CARE", NOW - timedelta(days=1), {
        "subject": {"given_name": "Sam", "family_name": "Reid"}, "payload": {"kind": "REFERRAL"}},
        {r: ["subject.given_name", "subject.family_name", "payload.kind"] for r in ALL_MASH})
    tia_event = shared(tia, "education.concern", "EDUCATION", NOW - timedelta(days=1), {
        "subject": {"given_name": "Tia", "family_name": "Okafor"}, "payload": {"concern_kind": "ATTENDANCE_DROP"}},
        {r: ["subject.given_name", "subject.family_name", "payload.concern_kind"] for r in ALL_MASH})
    tia_police = shared(tia, "police.public_protection_notification", "POLICE", NOW - timedelta(hours=20), {
        "subject": {"given_name": "Tia", "family_name": "Okafor"},
        "payload": {"incident_type": "DOMESTIC_ABUSE", "children_present": True}},
        {r: ["subject.given_name", "subject.family_name", "payload.incident_type", "payload.children_present"]
         for r in ALL_MASH})
    alerts = {
        "ruby": alert(ruby, "RED", [police, health], NOW - timedelta(hours=1, minutes=40), NOW + timedelta(minutes=20),
                      NOW - timedelta(minutes=10), 220,
                      ["police-high-risk", "two-agencies-within-7-days", "emergency-attendance-injury-pattern",
                       "domestic-abuse-children-present", "emergency-attendance-safeguarding-flag"],
                      ["police graded the incident high risk (+80)", "two agencies (+50)", "injury pattern (+40)",
                       "domestic abuse with children present (+25)", "safeguarding flag (+25)"]),
        "sam": alert(sam, "AMBER", [school, care], NOW - timedelta(days=1), NOW - timedelta(hours=1),
                     NOW - timedelta(hours=3), 80, ["two-agencies-within-7-days", "missing-education"],
                     ["two agencies (+50)", "missing education (+20)"]),
        "tia": alert(tia, "GREEN", [tia_event, tia_police], NOW - timedelta(hours=20), NOW + timedelta(days=2),
                     NOW + timedelta(days=1), 35, ["domestic-abuse-children-present", "attendance-drop"],
                     ["domestic abuse with children present (+25)", "attendance drop (+10)"]),
    }
    TriageStore(sessions).apply(list(alerts.values()), [], [police, health, school, care, tia_event, tia_police])
    return {"ruby": {**alerts["ruby"], "police": police, "health": health}, "sam": alerts["sam"],
            "tia": alerts["tia"]}


def sealed_decision(session: Session, decision_id: str, outcome: str, decided_at: datetime,
                    alert_id: str = "a1", person_id: str = "p1") -> None:
    """A decision row and its signed entry on the app's audit chain, as the app writes them (the
    outbox sends only a decision that is as sealed)."""
    from mash.models import TriageDecisionRecord
    from mash.settings import get_settings
    from services.sharing.audit_keys import audit_keys
    from services.triage_app.sealed_decisions import seal_action

    record = {"kind": "triage_decision", "outcome": outcome, "rationale": "r", "decided_role": "triage_worker",
              "rag_at_decision": "RED", "id": decision_id, "alert_id": alert_id, "person_id": person_id,
              "alert_revision": 1, "by": "alice", "at": decided_at.astimezone(UTC).isoformat()}
    audit_ref = seal_action(session, audit_keys(get_settings()), record)
    session.add(TriageDecisionRecord(
        decision_id=decision_id, alert_id=alert_id, person_id=person_id, outcome=outcome, rationale="r",
        decided_by="alice", decided_role="triage_worker", rag_at_decision="RED", decided_at=decided_at,
        audit_ref=audit_ref, alert_revision=1))
