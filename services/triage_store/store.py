"""Writes alerts and event outcomes to SQL, idempotently.

Kafka delivers at least once, so the same alert revision or outcome may arrive twice: an
outcome is stored once per event_id, and an alert row only moves forward in revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertRecord, EventOutcomeRecord


class TriageStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def apply(self, alerts: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]]) -> None:
        with self._sessions.begin() as session:
            for outcome in {o["event_id"]: o for o in reversed(outcomes)}.values():  # first wins
                if session.get(EventOutcomeRecord, outcome["event_id"]) is None:
                    session.add(EventOutcomeRecord(**{**outcome, "recorded_at": _dt(outcome["recorded_at"])}))
            for alert in _latest_revisions(alerts):
                self._upsert_alert(session, alert)

    @staticmethod
    def _upsert_alert(session: Session, alert: dict[str, Any]) -> None:
        values = {**alert, "opened_at": _dt(alert["opened_at"]), "updated_at": _dt(alert["updated_at"])}
        row = session.get(AlertRecord, alert["alert_id"])
        if row is None:
            session.add(AlertRecord(**values))
        elif alert["revision"] > row.revision:
            for key, value in values.items():
                setattr(row, key, value)


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
