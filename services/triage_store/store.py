"""Writes alerts, event outcomes and the shared events of the timeline to SQL, idempotently.

Kafka delivers at least once, so the same alert revision, outcome or shared event may arrive
twice: an outcome and a timeline event are stored once per event_id, and an alert's hub columns
only move forward in revision (the triage app's columns, claim and decision, are never touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertRecord, EventOutcomeRecord, TimelineEventRecord

RAG_RANK = {"RED": 0, "AMBER": 1, "GREEN": 2}
HUB_TIMES = ("opened_at", "updated_at", "clock_started_at", "at_risk_at", "due_at")
CHUNK = 500  # keys per IN list


class TriageStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def apply(self, alerts: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]],
              shared: Sequence[dict[str, Any]] = ()) -> None:
        with self._sessions.begin() as session:
            apply_in(session, alerts, outcomes, shared)


def apply_in(session: Session, alerts: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]],
             shared: Sequence[dict[str, Any]] = ()) -> None:
    """Write a batch's outcomes, timeline events and alert revisions in the caller's transaction,
    reading what is already there once per kind (not a round trip per row)."""
    _add_outcomes(session, outcomes)
    _add_timeline(session, shared)
    latest = _latest_revisions(alerts)
    rows = _by_key(session, AlertRecord, AlertRecord.alert_id, [a["alert_id"] for a in latest])
    for alert in latest:
        _upsert_alert(session, rows.get(alert["alert_id"]), alert)


def _add_outcomes(session: Session, outcomes: Sequence[dict[str, Any]]) -> None:
    unique = {o["event_id"]: o for o in reversed(outcomes)}  # the first of a batch wins
    known = _known(session, EventOutcomeRecord.event_id, list(unique))
    session.add_all(EventOutcomeRecord(**{**o, "recorded_at": _dt(o["recorded_at"])})
                    for event_id, o in unique.items() if event_id not in known)


def _add_timeline(session: Session, shared: Sequence[dict[str, Any]]) -> None:
    unique = {e["event_id"]: e for e in shared}
    known = _known(session, TimelineEventRecord.event_id, list(unique))
    session.add_all(TimelineEventRecord(
        event_id=event_id, person_id=e["person_id"], event_type=e["event_type"],
        source_agency=e["source_agency"], occurred_at=_dt(e["occurred_at"]),
        received_at=_dt(e["received_at"]), sensitivity=e["sensitivity"], consent=e["consent"],
        policy_version=e["policy_version"], audit_ref=e["audit_ref"], values=e["values"],
        views={v["role"]: list(v["fields"]) for v in e["views"]})
        for event_id, e in unique.items() if event_id not in known)


def _upsert_alert(session: Session, row: AlertRecord | None, alert: dict[str, Any]) -> None:
    values = {**alert, **{k: _dt(alert[k]) for k in HUB_TIMES if alert.get(k) is not None},
              "rag_rank": RAG_RANK[alert["rag"]]}
    if row is None:
        session.add(AlertRecord(**values))
        return
    if alert["revision"] <= row.revision:
        return
    if row.rag_set_by is not None:
        # A person set the rating: it stands unless the hub now rates the child more urgently than
        # both that person and the hub itself did at the time (new information, not a repeat).
        if RAG_RANK[alert["rag"]] >= min(row.rag_rank, RAG_RANK[row.hub_rag or row.rag]):
            values = {**values, "rag": row.rag, "rag_rank": row.rag_rank, "due_at": row.due_at,
                      "at_risk_at": row.at_risk_at, "hub_rag": alert["rag"]}
        else:
            values = {**values, "hub_rag": None, "rag_set_by": None, "rag_set_at": None}
    for key, value in values.items():
        setattr(row, key, value)


def _known(session: Session, column: Any, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(session.scalars(select(column).where(column.in_(keys[start:start + CHUNK]))))
    return found


def _by_key(session: Session, model: Any, column: Any, keys: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for start in range(0, len(keys), CHUNK):
        for row in session.scalars(select(model).where(column.in_(keys[start:start + CHUNK]))):
            found[getattr(row, column.key)] = row
    return found


def _latest_revisions(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        seen = latest.get(alert["alert_id"])
        if seen is None or alert["revision"] > seen["revision"]:
            latest[alert["alert_id"]] = alert
    return list(latest.values())


def _dt(value: datetime | int) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(value / 1000, UTC)


def parse_values(text: str) -> dict[str, Any]:
    return dict(orjson.loads(text or "{}"))
