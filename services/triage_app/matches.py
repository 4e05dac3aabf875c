"""Possible matches held by the person index for a person to confirm or reject.

A wrong link shares one child's data in another child's record, so the index never links a
doubtful match itself: it starts a new person and holds the pair here. The answer goes to the
hub on `mash.match_answers.v1` (outbox); a confirmation merges the two persons there, as a proven
merge would, and triage joins their alerts.

A review shows who both children are and how each field compared, so it is shown to a user whose
sharing role sees who both children are (`may_review`), or to a triage manager, and only the
comparison levels of fields the user sees on both sides (`evidence_shown`); confirming or rejecting
follows the same rule (404 otherwise: no hint the review exists). A merge puts one child's
information in another child's record: nobody confirms one about a child they cannot see.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.models import MatchReview, TimelineEventRecord
from services.triage_app.accounts import MANAGER, User
from services.triage_app.actions import Conflict, Refused
from services.triage_app.views import visible_values

SHOWN = ("subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.sex", "subject.postcode",
         "subject.address_line")
WHO = ("subject.given_name", "subject.family_name", "subject.date_of_birth")  # seeing one is seeing who the child is
# The person index's comparison levels (enrichment/comparisons.py FIELDS), by the field each compares.
COMPARED = {"given": "subject.given_name", "family": "subject.family_name", "dob": "subject.date_of_birth",
            "sex": "subject.sex", "postcode": "subject.postcode", "address": "subject.address_line"}


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


def may_review(app_role: str, event_fields: Collection[str], candidate_fields: Collection[str]) -> bool:
    """Whether a user may see and answer a review: a triage manager may (they answer for the queue),
    anyone else only if their role sees who the child is on both sides (a name or date of birth of
    the held event, and of some event of the candidate)."""
    return app_role == MANAGER or (any(f in event_fields for f in WHO) and any(f in candidate_fields for f in WHO))


def evidence_shown(evidence: Mapping[str, Any], event_fields: Collection[str],
                   candidate_fields: Collection[str]) -> dict[str, Any]:
    """The comparison levels of fields the user sees on both sides: "postcode: DISAGREE" about a
    postcode withheld from them would tell them something the sharing policy did not."""
    return {key: level for key, level in evidence.items()
            if key in COMPARED and COMPARED[key] in event_fields and COMPARED[key] in candidate_fields}


def open_tasks(session: Session, user: User, limit: int = 100) -> list[MatchTask]:
    """The open reviews the user may see (`may_review`), oldest first, as their role sees them."""
    tasks: list[MatchTask] = []
    offset = 0
    while len(tasks) < limit:
        reviews = session.scalars(select(MatchReview).where(MatchReview.status == "OPEN")
                                  .order_by(MatchReview.created_at, MatchReview.event_id)
                                  .offset(offset).limit(limit)).all()
        for r in reviews:
            task = _task(session, user, r)
            if task is not None and len(tasks) < limit:
                tasks.append(task)
        if len(reviews) < limit:
            break
        offset += limit
    return tasks


def answer(sessions: sessionmaker[Session], user: User, event_id: str, confirmed: bool, now: datetime) -> None:
    if not user.can_act:
        raise Refused("this account is read-only")
    with sessions.begin() as session:
        review = session.get(MatchReview, event_id, with_for_update=True)
        if review is None or _task(session, user, review) is None:  # one they may not see: as if none
            raise LookupError(event_id)
        if review.status != "OPEN":
            raise Conflict(f"already answered ({review.status.lower()} by {review.answered_by})")
        review.status = "CONFIRMED" if confirmed else "REJECTED"
        review.answered_by, review.answered_at = user.username, now


def _task(session: Session, user: User, review: MatchReview) -> MatchTask | None:
    """The review as the user may see it, or None if they may not (`may_review`)."""
    event_side, event_fields = _who(session, user, TimelineEventRecord.event_id == review.event_id)
    candidate_side, candidate_fields = _who(session, user,
                                            TimelineEventRecord.person_id == review.candidate_person_id)
    if not may_review(user.role, event_fields, candidate_fields):
        return None
    return MatchTask(review.event_id, review.person_id, review.candidate_person_id, review.score,
                     evidence_shown(review.evidence, event_fields, candidate_fields), review.created_at,
                     event_side, candidate_side)


def _who(session: Session, user: User, where: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """Who the events say the child is, from the latest the user's role sees any of (SHOWN fields),
    and every SHOWN field the role sees in any of them."""
    if not user.sharing_role:
        return {}, frozenset()
    rows = session.execute(select(TimelineEventRecord.values, TimelineEventRecord.views).where(where)
                           .order_by(TimelineEventRecord.occurred_at.desc()).limit(20))
    latest: dict[str, Any] = {}
    fields: set[str] = set()
    for values, views in rows:
        allowed = [f for f in views.get(user.sharing_role, ()) if f in SHOWN]
        subject = visible_values(orjson.loads(values or "{}"), allowed).get("subject", {})
        if subject and not latest:
            latest = dict(subject)
        fields.update(f"subject.{key}" for key in subject)
    return latest, frozenset(fields)
