"""What triage staff do to an alert: claim, release, reassign, decide.

A decision is written with its sealed entry in the audit trail (chain `triage-app`) in one
transaction, and kept in an outbox until it is on `mash.decisions.v1`: a broker that is down
delays the hub learning of it, never loses it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertActionRecord, AlertRecord, TriageDecisionRecord, UserRecord
from services.sharing import audit_store
from services.sharing.audit_chain import canonical, digest, seal
from services.triage_app.accounts import MANAGER, WORKER, User

AUDIT_CHAIN = "triage-app"
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


@dataclass(frozen=True)
class Decided:
    decision_id: str
    audit_ref: str


def claim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        if alert.claimed_by not in (None, user.username):
            raise Conflict(f"already claimed by {alert.claimed_by}")
        alert.claimed_by, alert.claimed_at = user.username, now
        _log(session, alert_id, "claimed", user.username, "", now)


def unclaim(sessions: sessionmaker[Session], user: User, alert_id: str, now: datetime) -> None:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        if alert.claimed_by is None:
            return
        if alert.claimed_by != user.username and user.role != MANAGER:
            raise Refused("only the claimant or a triage manager may release a claim")
        _log(session, alert_id, "released", user.username, f"was {alert.claimed_by}", now)
        alert.claimed_by, alert.claimed_at = None, None


def assign(sessions: sessionmaker[Session], user: User, alert_id: str, to: str, now: datetime) -> None:
    if user.role != MANAGER:
        raise Refused("only a triage manager reassigns alerts")
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        target = session.get(UserRecord, to)
        if target is None or not target.active or target.role not in (WORKER, MANAGER):
            raise Conflict(f"{to!r} is not a triage worker or manager")
        _log(session, alert_id, "assigned", user.username, f"to {to} (was {alert.claimed_by or 'unclaimed'})", now)
        alert.claimed_by, alert.claimed_at = to, now


def decide(sessions: sessionmaker[Session], user: User, alert_id: str, outcome: str, rationale: str,
           now: datetime) -> Decided:
    rationale = rationale.strip()
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; choose from {', '.join(OUTCOMES)}")
    if not rationale:
        raise ValueError("a decision needs its rationale")
    if len(rationale) > MAX_RATIONALE:
        raise ValueError(f"the rationale is {len(rationale)} characters; at most {MAX_RATIONALE}")
    for attempt in range(5):  # two decisions at once may race for the chain's head: the loser retries
        try:
            return _decide(sessions, user, alert_id, outcome, rationale, now)
        except IntegrityError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _decide(sessions: sessionmaker[Session], user: User, alert_id: str, outcome: str, rationale: str,
            now: datetime) -> Decided:
    with sessions.begin() as session:
        alert = _actionable(session, user, alert_id)
        if alert.claimed_by != user.username and user.role != MANAGER:
            raise Refused("claim the alert before recording a decision on it")
        decision_id = str(uuid.uuid4())
        record = {"kind": "triage_decision", "decision_id": decision_id, "alert_id": alert_id,
                  "person_id": alert.person_id, "outcome": outcome, "rationale": rationale,
                  "decided_by": user.username, "decided_role": user.role, "rag_at_decision": alert.rag,
                  "alert_revision": alert.revision, "decided_at": now.astimezone(UTC).isoformat()}
        text = canonical(record)
        head = audit_store.head(session, AUDIT_CHAIN)
        body = {"event_id": alert_id, "person_id": alert.person_id, "kind": "triage_decision",
                "decided_by": user.username, "decided_at": record["decided_at"], "decisions_digest": digest(text)}
        (sealed,) = seal(AUDIT_CHAIN, head, [body])
        audit_store.append(session, [audit_store.Entry(sealed, alert_id, f"{decision_id}/{AUDIT_CHAIN}",
                                                       digest(text))], {digest(text): text})
        audit_ref = f"{AUDIT_CHAIN}:{sealed.seq}"
        session.add(TriageDecisionRecord(
            decision_id=decision_id, alert_id=alert_id, person_id=alert.person_id, outcome=outcome,
            rationale=rationale, decided_by=user.username, decided_role=user.role, rag_at_decision=alert.rag,
            decided_at=now, audit_ref=audit_ref))
        alert.decided_at = now
        _log(session, alert_id, "decided", user.username, OUTCOMES[outcome], now)
        return Decided(decision_id, audit_ref)


def _actionable(session: Session, user: User, alert_id: str) -> AlertRecord:
    if not user.can_act:
        raise Refused("this account is read-only")
    alert = session.get(AlertRecord, alert_id, with_for_update=True)
    if alert is None or (user.role != MANAGER and alert.claimed_by not in (None, user.username)):
        raise LookupError(alert_id)
    if alert.status != "OPEN" or alert.decided_at is not None:
        raise Conflict("this alert is closed: a decision has been recorded")
    return alert


def _log(session: Session, alert_id: str, action: str, actor: str, detail: str, now: datetime) -> None:
    session.add(AlertActionRecord(alert_id=alert_id, action=action, actor=actor, detail=detail[:200], at=now))
