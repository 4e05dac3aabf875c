"""Where an information request stands, and what chasing it is due. Pure.

A request's clock runs from when it was sent, for the time the enquiry's RAG allows under the
partnership's request profile (services/triage/clocks.py: the same calendar, working hours and
at-risk share as alerts). An answer (held, nil return, declined) stops it; an acknowledgement
does not. At risk, the agency is reminded once; overdue, the manager is told once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.triage.clocks import AT_RISK, BREACHED, Profile, at_risk_time, deadline, status

HELD, NIL, DECLINED = "HELD", "NIL", "DECLINED"
ANSWERS = {
    HELD: "information held",
    NIL: "nil return: searched, nothing held",
    DECLINED: "declined",
}
# shown with the answers: a request whose enquiry closed unanswered, and an answer the role may not read
SHOWN = {**ANSWERS, "ENQUIRY_CLOSED": "enquiry closed before an answer", "ANSWERED": "answered"}
SENT, ACKNOWLEDGED, OVERDUE, RISK = "SENT", "ACKNOWLEDGED", "OVERDUE", "AT_RISK"
REMIND, ESCALATE = "remind", "escalate"


@dataclass(frozen=True)
class RequestTimes:
    rag: str
    sent_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    answer: str | None = None
    reminded_at: datetime | None = None
    escalated_at: datetime | None = None


def due(profile: Profile, rag: str, sent_at: datetime) -> tuple[datetime, datetime]:
    """(at risk, due) for a request sent now under the enquiry's rating."""
    return at_risk_time(profile, rag, sent_at), deadline(profile, rag, sent_at)


def state(profile: Profile, times: RequestTimes, now: datetime) -> str:
    """HELD / NIL / DECLINED once answered (however late); else OVERDUE, AT_RISK, ACKNOWLEDGED or SENT."""
    if times.answer is not None:
        return times.answer
    clock = status(profile, times.rag, times.sent_at, times.due_at, now)
    if clock == BREACHED:
        return OVERDUE
    if clock == AT_RISK:
        return RISK
    return ACKNOWLEDGED if times.acknowledged_at is not None else SENT


def answered_on_time(times: RequestTimes) -> bool | None:
    """None while unanswered."""
    return None if times.answered_at is None else times.answered_at <= times.due_at


def chasing(profile: Profile, times: RequestTimes, now: datetime) -> list[str]:
    """What is due now and not yet done: remind the agency (at risk or later), escalate to the
    manager (overdue). An answered request is never chased."""
    now_state = state(profile, times, now)
    due_now: list[str] = []
    if now_state in (RISK, OVERDUE) and times.reminded_at is None:
        due_now.append(REMIND)
    if now_state == OVERDUE and times.escalated_at is None:
        due_now.append(ESCALATE)
    return due_now
