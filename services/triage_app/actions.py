"""What triage staff do to an alert: claim, release, reassign, decide.

A decision is written with its sealed entry in the audit trail (chain `triage-app`, signed with the
app's audit key) in one transaction, and kept in an outbox until it is on `mash.decisions.v1`: a broker that is down
delays the hub learning of it, never loses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertActionRecord, AlertRecord, TriageDecisionRecord, UserRecord
from mash.settings import get_settings
from services.sharing.audit_keys import audit_keys
from services.sharing.audit_signing import AuditKeys
from services.triage.clocks import Profile, at_risk_time, deadline
from services.triage_app.accounts import MANAGER, WORKER, User
from services.triage_app.sealed_decisions import ACTION_KIND, seal_action
from services.triage_store.store import RAG_RANK

_keys: AuditKeys | None = None
T = TypeVar("T")


def sign_with(keys: AuditKeys) -> None:
    """The key the app signs its audit entries with (its settings'; set once at start)."""
    global _keys
    _keys = keys


def signing_keys() -> AuditKeys:
    global _keys
    if _keys is None:
        _keys = audit_keys(get_settings())
    return _keys
OUTCOMES = {
    "STRATEGY_DISCUSSION_S47": "strategy discussion / section 47 enquiry",
    "CHILD_IN_NEED_S17": "section 17 child in need assessment",
    "EARLY_HELP": "early help",
    "NO_FURTHER_ACTION": "no further action",
    "OTHER": "other",
}
MAX_RATIONALE = 4000


class Refused(PermissionError):
    """The user may not do this (403)."""


class Conflict(ValueError):
    """The alert is not in a state that allows it: claimed by someone else, already decided (409)."""


class Stale(Conflict):
    """The alert changed after the person looked at it: a decision must cover what they saw (409)."""

    def __init__(self, seen: int, alert: AlertRecord) -> None:
        joined = list(alert.joined or [])
        new = [e for e, j in zip(alert.event_ids, joined, strict=False) if j > seen] if joined else []
        what = f"{len(new)} event(s) joined it since" if new else "its rating or events were revised since"
        super().__init__(f"the alert changed while you were looking at it: you saw revision {seen}, it is now "
                         f"revision {alert.revision} ({what}; now {alert.rag}). Review what is new, then decide.")
        self.new_event_ids = new


@dataclass(frozen=True)
class Decided:
    decision_id: str
    audit_ref: str


def claim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    retrying(lambda: _claim(sessions, user, alert_id, now))


def _claim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        if alert.claimed_by not in (None, user.username):
            raise Conflict(f"already claimed by {alert.claimed_by}")
        alert.claimed_by, alert.claimed_at = user.username, now
        log(session, alert, "claimed", user.username, "", now)


def unclaim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    retrying(lambda: _unclaim(sessions, user, alert_id, now))


def _unclaim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        if alert.claimed_by is None:
            return
        if alert.claimed_by != user.username and user.role != MANAGER:
            raise Refused("only the claimant or a triage manager may release a claim")
        was = alert.claimed_by
        alert.claimed_by, alert.claimed_at = None, None
        log(session, alert, "released", user.username, f"was {was}", now)


def assign(sessions: sessionmaker[Session], user: User, alert_id: str, to: str, now: datetime) -> None:
    if user.role != MANAGER:
        raise Refused("only a triage manager reassigns alerts")
    retrying(lambda: _assign(sessions, user, alert_id, to, now))


def _assign(sessions: sessionmaker[Session], user: User, alert_id: str, to: str, now: datetime) -> None:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        target = session.get(UserRecord, to)
        if target is None or not target.active or target.role not in (WORKER, MANAGER):
            raise Conflict(f"{to!r} is not a triage worker or manager")
        was = alert.claimed_by
        alert.claimed_by, alert.claimed_at = to, now
        log(session, alert, "assigned", user.username, f"to {to} (was {was or 'unclaimed'})", now)


def decide(sessions: sessionmaker[Session], user: User, alert_id: str, outcome: str, rationale: str,
           now: datetime, seen_revision: int | None = None) -> Decided:
    """Record a decision on the alert as the person saw it (`seen_revision`): if the hub revised it
    since, nothing is recorded and they are shown what changed (Stale)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; choose from {', '.join(OUTCOMES)}")
    rationale = _checked(rationale, "a decision")
    return retrying(lambda: _decide(sessions, user, alert_id, outcome, rationale, now, seen_revision))


def rerate(sessions: sessionmaker[Session], user: User, alert_id: str, rag: str, rationale: str, now: datetime,
           profile: Profile | None) -> Decided:
    """A person changes the rating (lowering is never the hub's to do), with the reason, in the audit
    trail. The deadline becomes the new rating's, counted from when the alert's clock started. A
    later hub revision that rates the child more urgently than the hub did at this change wins."""
    if rag not in RAG_RANK:
        raise ValueError(f"unknown rating {rag!r}; choose RED, AMBER or GREEN")
    rationale = _checked(rationale, "a change of rating")
    return retrying(lambda: _rerate(sessions, user, alert_id, rag, rationale, now, profile))


def _decide(sessions: sessionmaker[Session], user: User, alert_id: str, outcome: str, rationale: str,
            now: datetime, seen_revision: int | None) -> Decided:
    with sessions.begin() as session:
        alert = claimed(session, user, alert_id, "recording a decision on it")
        if seen_revision is not None and seen_revision != alert.revision:
            raise Stale(seen_revision, alert)
        decision_id = str(uuid.uuid4())
        audit_ref = seal(session, alert, decision_id, user, now, {
            "kind": "triage_decision", "outcome": outcome, "rationale": rationale, "decided_role": user.role,
            "rag_at_decision": alert.rag})
        session.add(TriageDecisionRecord(
            decision_id=decision_id, alert_id=alert_id, person_id=alert.person_id, outcome=outcome,
            rationale=rationale, decided_by=user.username, decided_role=user.role, rag_at_decision=alert.rag,
            decided_at=now, audit_ref=audit_ref, alert_revision=alert.revision))
        alert.decided_at = now
        log(session, alert, "decided", user.username, OUTCOMES[outcome], now)
        return Decided(decision_id, audit_ref)


def _rerate(sessions: sessionmaker[Session], user: User, alert_id: str, rag: str, rationale: str, now: datetime,
            profile: Profile | None) -> Decided:
    with sessions.begin() as session:
        alert = claimed(session, user, alert_id, "changing its rating")
        if rag == alert.rag:
            raise Conflict(f"the alert is already {rag}")
        change_id = str(uuid.uuid4())
        started = alert.clock_started_at or alert.opened_at
        if profile is not None and started is not None:
            start = started if started.tzinfo else started.replace(tzinfo=UTC)
            # in UTC: the profile's clock is London's, and SQLite would keep its wall time without the offset
            alert.due_at = deadline(profile, rag, start).astimezone(UTC)
            alert.at_risk_at = min(at_risk_time(profile, rag, start).astimezone(UTC), alert.due_at)
        audit_ref = seal(session, alert, change_id, user, now, {
            "kind": "rating_changed", "from": alert.rag, "to": rag, "rationale": rationale,
            "due_at": _iso(alert.due_at), "at_risk_at": _iso(alert.at_risk_at)})
        was = alert.rag
        alert.hub_rag = alert.hub_rag or alert.rag
        alert.rag, alert.rag_rank, alert.rag_set_by, alert.rag_set_at = rag, RAG_RANK[rag], user.username, now
        log(session, alert, "re-rated", user.username, f"{was} to {rag}: {rationale}", now)
        return Decided(change_id, audit_ref)


def seal(session: Session, alert: AlertRecord, action_id: str, user: User, now: datetime,
          what: dict[str, Any]) -> str:
    """One entry on the app's chain of the audit trail, naming the full record by its digest."""
    return seal_action(session, signing_keys(), {**what, "id": action_id, "alert_id": alert.alert_id,
                                                  "person_id": alert.person_id, "alert_revision": alert.revision,
                                                  "by": user.username, "at": now.astimezone(UTC).isoformat()})


def retrying(attempt: Callable[[], T]) -> T:
    for tries in range(5):  # two writers at once may race for the chain's head: the loser retries
        try:
            return attempt()
        except IntegrityError:
            if tries == 4:
                raise
    raise AssertionError("unreachable")


def _checked(rationale: str, what: str) -> str:
    rationale = rationale.strip()
    if not rationale:
        raise ValueError(f"{what} needs its rationale")
    if len(rationale) > MAX_RATIONALE:
        raise ValueError(f"the rationale is {len(rationale)} characters; at most {MAX_RATIONALE}")
    return rationale


def claimed(session: Session, user: User, alert_id: str, doing: str) -> AlertRecord:
    alert = _actionable(session, user, alert_id)
    if alert.claimed_by != user.username and user.role != MANAGER:
        raise Refused(f"claim the alert before {doing}")
    return alert


def _actionable(session: Session, user: User, alert_id: str) -> AlertRecord:
    if not user.can_act:
        raise Refused("this account is read-only")
    alert = session.get(AlertRecord, alert_id, with_for_update=True)
    if alert is None or (user.role != MANAGER and alert.claimed_by not in (None, user.username)):
        raise LookupError(alert_id)
    if alert.status != "OPEN" or alert.decided_at is not None:
        raise Conflict("this alert is closed: a decision has been recorded")
    return alert


def log(session: Session, alert: AlertRecord, action: str, actor: str, detail: str, now: datetime) -> None:
    """The queue's history, each line sealed on the app's chain with who holds the alert after it."""
    detail = detail[:200]
    session.add(AlertActionRecord(alert_id=alert.alert_id, action=action, actor=actor, detail=detail, at=now))
    seal_action(session, signing_keys(), {
        "kind": ACTION_KIND, "id": str(uuid.uuid4()), "action": action, "alert_id": alert.alert_id,
        "person_id": alert.person_id, "alert_revision": alert.revision, "by": actor, "detail": detail,
        "at": now.astimezone(UTC).isoformat(), "claimed_by": alert.claimed_by})


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
