"""Possible matches held by the person index for a person to confirm or reject.

A wrong link shares one child's data in another child's record, so the index never links a
doubtful match itself: it starts a new person and holds the pair here. The answer goes to the
hub on `mash.match_answers.v1` (outbox); a confirmation merges the two persons there, as a proven
merge would, and triage joins their alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import MatchReview, TimelineEventRecord
from services.triage_app.accounts import User
from services.triage_app.actions import Conflict, Refused
from services.triage_app.views import visible_values

SHOWN = ("subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.sex", "subject.postcode",
         "subject.address_line")


@dataclass(frozen=True)
class MatchTask:
    event_id: str
    person_id: str
    candidate_person_id: str
    score: float
    evidence: dict[str, Any]
    created_at: datetime
    event_side: dict[str, Any]  # who the event says, as the user's role may see it
    candidate_side: dict[str, Any]  # who the candidate is, from their latest event the role may see

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


def open_tasks(session: Session, user: User, limit: int = 100) -> list[MatchTask]:
    reviews = session.scalars(select(MatchReview).where(MatchReview.status == "OPEN")
                              .order_by(MatchReview.created_at).limit(limit)).all()
    return [MatchTask(r.event_id, r.person_id, r.candidate_person_id, r.score, dict(r.evidence), r.created_at,
                      _who(session, user, TimelineEventRecord.event_id == r.event_id),
                      _who(session, user, TimelineEventRecord.person_id == r.candidate_person_id))
            for r in reviews]


def answer(sessions: sessionmaker[Session], user: User, event_id: str, confirmed: bool, now: datetime) -> None:
    if not user.can_act:
        raise Refused("this account is read-only")
    with sessions.begin() as session:
        review = session.get(MatchReview, event_id, with_for_update=True)
        if review is None:
            raise LookupError(event_id)
        if review.status != "OPEN":
            raise Conflict(f"already answered ({review.status.lower()} by {review.answered_by})")
        review.status = "CONFIRMED" if confirmed else "REJECTED"
        review.answered_by, review.answered_at = user.username, now


def _who(session: Session, user: User, where: Any) -> dict[str, Any]:
    if not user.sharing_role:
        return {}
    rows = session.execute(select(TimelineEventRecord.values, TimelineEventRecord.views).where(where)
                           .order_by(TimelineEventRecord.occurred_at.desc()).limit(20))
    for values, views in rows:
        allowed = [f for f in views.get(user.sharing_role, ()) if f in SHOWN]
        subject = visible_values(orjson.loads(values or "{}"), allowed).get("subject", {})
        if subject:
            return dict(subject)
    return {}
