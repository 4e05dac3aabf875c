"""The triage queue and an alert's page, read from the triage store for one user.

Workers see open alerts that are unclaimed or theirs; managers and auditors see every open alert.
The queue is ordered by rating, then by time left, so the red alert nearest its deadline is first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from mash.models import AlertActionRecord, AlertRecord, TimelineEventRecord, TriageDecisionRecord
from services.triage.clocks import AT_RISK, BREACHED, ON_TIME
from services.triage.scoring import Scoring
from services.triage_app.accounts import User
from services.triage_app.views import VisibleEvent, amendment, visible_event, visible_reasons, visible_values

NAME_FIELDS = ("subject.given_name", "subject.family_name", "subject.date_of_birth")


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class QueueRow:
    alert_id: str
    person_id: str
    child: str  # the name and date of birth the user's role may see, or a reference
    rag: str
    score: int
    agencies: list[str]
    opened_at: datetime
    due_at: datetime | None
    clock: str  # ON_TIME | AT_RISK | BREACHED
    seconds_left: int | None
    claimed_by: str | None

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "opened_at": _iso(self.opened_at), "due_at": _iso(self.due_at)}


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    at_risk: int
    breached: int


@dataclass(frozen=True)
class AlertPage:
    row: QueueRow
    status: str
    decided: bool
    reasons: list[str]
    hidden_reasons: int  # reasons resting on fields withheld from this user's role
    indicators_total: int
    timeline: list[VisibleEvent]
    in_alert: set[str]
    household: list[QueueRow]
    actions: list[tuple[datetime, str, str, str]]
    decisions: list[TriageDecisionRecord]
    profile: str
    rated_by: str | None = None  # a person changed the rating
    hub_rag: str | None = None
    revision: int = 1  # what the person is looking at: a decision names it
    review: str | None = None  # the hub asks a person to re-rate
    follows: str | None = None  # the decided alert this one carries on from
    joined: dict[str, int] = field(default_factory=dict)  # event id -> the alert revision it joined at


def queue(session: Session, user: User, now: datetime, limit: int = 100) -> QueuePage:
    base = _open_for(user)
    rows = session.scalars(base.order_by(AlertRecord.rag_rank, AlertRecord.due_at, AlertRecord.opened_at)
                           .limit(limit)).all()
    counted = base.with_only_columns(
        func.count(), func.count().filter(AlertRecord.due_at <= now),
        func.count().filter(AlertRecord.at_risk_at <= now, AlertRecord.due_at > now)).order_by(None)
    total, breached, at_risk = session.execute(counted).one()
    names = _names(session, [r.person_id for r in rows], user)
    return QueuePage([_row(r, now, names.get(r.person_id)) for r in rows], total, at_risk, breached)


def alert_page(session: Session, user: User, alert_id: str, scoring: Scoring, now: datetime) -> AlertPage:
    alert = session.get(AlertRecord, alert_id)
    if alert is None or not _may_see(user, alert):
        raise NotFound(alert_id)
    events = session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.person_id == alert.person_id)
                             .order_by(TimelineEventRecord.occurred_at)).all()
    timeline: list[VisibleEvent] = []
    in_alert = set(alert.event_ids)
    scored: list[tuple[str, str, int, dict[str, Any]]] = []
    households: set[str] = set()
    revisions: dict[str, list[tuple[tuple[datetime, str], int]]] = {}  # record -> (order, place in timeline)
    for e in events:
        values = orjson.loads(e.values or "{}")
        seen = visible_event(e.event_id, e.event_type, e.source_agency, e.occurred_at, values, e.views,
                             user.sharing_role, e.withdrawn_fields)
        timeline.append(replace(seen, note=_standing(e)))
        revisions.setdefault(e.record_id or e.event_id, []).append((_revised_order(e), len(timeline) - 1))
        if e.event_id in in_alert and not e.withdrawn and not e.superseded_by:  # the records as they stand
            shown = visible_values(values, e.views.get(user.sharing_role or "", ()))
            scored.append((e.event_type, e.source_agency, _ms(e.occurred_at), shown))
            households.update(shown.get("context", {}).get("household_person_ids") or ())
    for places in revisions.values():  # each revision against the one before it
        order = [at for _, at in sorted(places)]
        for before, after in pairwise(order):
            timeline[after] = replace(timeline[after], amended=amendment(
                timeline[after].agency, timeline[before], timeline[after]))
    reasons = visible_reasons(scoring, scored)
    names = _names(session, [alert.person_id], user)
    return AlertPage(
        row=_row(alert, now, names.get(alert.person_id)), status=alert.status, decided=alert.decided_at is not None,
        reasons=reasons, hidden_reasons=max(0, len(alert.indicators or ()) - len(reasons)),
        indicators_total=len(alert.indicators or ()), timeline=timeline, in_alert=in_alert,
        household=_household(session, user, households - {alert.person_id}, now),
        actions=[(a.at, a.action, a.actor, a.detail) for a in session.scalars(
            select(AlertActionRecord).where(AlertActionRecord.alert_id == alert_id).order_by(AlertActionRecord.id))],
        decisions=list(session.scalars(select(TriageDecisionRecord).where(TriageDecisionRecord.alert_id == alert_id)
                                       .order_by(TriageDecisionRecord.decided_at))),
        profile=alert.profile, rated_by=alert.rag_set_by, hub_rag=alert.hub_rag,
        revision=alert.revision, review=alert.review, follows=alert.follows,
        joined=dict(zip(alert.event_ids, alert.joined or (), strict=False)),
    )


def _revised_order(e: TimelineEventRecord) -> tuple[datetime, str]:
    when = _aware(e.revised_at or e.received_at)
    assert when is not None
    return when, e.event_id


def _standing(e: TimelineEventRecord) -> str:
    """How a revision stands: a later one amended it (whatever that no longer shares is withdrawn
    from here too), or the agency withdrew the record."""
    if e.withdrawn:
        return "withdrawn by the agency (entered in error)"
    if e.superseded_by:
        when = e.superseded_at.strftime("%d %b %Y %H:%M") if e.superseded_at else "later"
        return f"amended: superseded by a later revision on {when}; fields it no longer shares are withdrawn"
    return ""


def _open_for(user: User) -> Select[Any]:
    query = select(AlertRecord).where(AlertRecord.status == "OPEN", AlertRecord.decided_at.is_(None))
    if not user.sees_all:
        query = query.where(or_(AlertRecord.claimed_by.is_(None), AlertRecord.claimed_by == user.username))
    return query


def _may_see(user: User, alert: AlertRecord) -> bool:
    return user.sees_all or alert.claimed_by in (None, user.username)


def _household(session: Session, user: User, person_ids: set[str], now: datetime) -> list[QueueRow]:
    if not person_ids:
        return []
    rows = session.scalars(_open_for(user).where(AlertRecord.person_id.in_(sorted(person_ids)))).all()
    names = _names(session, [r.person_id for r in rows], user)
    return [_row(r, now, names.get(r.person_id)) for r in rows]


def _names(session: Session, person_ids: list[str], user: User) -> dict[str, str]:
    """Each child's name and date of birth from their latest event whose view lets this role see them."""
    if not person_ids or not user.sharing_role:
        return {}
    found: dict[str, str] = {}
    rows = session.execute(select(TimelineEventRecord.person_id, TimelineEventRecord.values,
                                  TimelineEventRecord.views)
                           .where(TimelineEventRecord.person_id.in_(person_ids))
                           .order_by(TimelineEventRecord.occurred_at.desc()))
    for person_id, values, views in rows:
        if person_id in found:
            continue
        allowed = [f for f in views.get(user.sharing_role, ()) if f in NAME_FIELDS]
        subject = visible_values(orjson.loads(values or "{}"), allowed).get("subject", {})
        if subject.get("given_name") or subject.get("family_name"):
            born = f" (born {subject['date_of_birth']})" if subject.get("date_of_birth") else ""
            found[person_id] = f"{subject.get('given_name') or ''} {subject.get('family_name') or ''}".strip() + born
    return found


def _row(alert: AlertRecord, now: datetime, child: str | None) -> QueueRow:
    due, at_risk = _aware(alert.due_at), _aware(alert.at_risk_at)
    clock = ON_TIME
    if due is not None and now >= due:
        clock = BREACHED
    elif at_risk is not None and now >= at_risk:
        clock = AT_RISK
    return QueueRow(
        alert.alert_id, alert.person_id, child or f"child {alert.person_id[:8]}", alert.rag, alert.score,
        list(alert.agencies), _aware(alert.opened_at) or now, due, clock,
        int((due - now).total_seconds()) if due is not None else None, alert.claimed_by)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive times


def _ms(moment: datetime) -> int:
    return int((_aware(moment) or moment).timestamp() * 1000)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def open_alert_counts(session: Session, now: datetime) -> dict[tuple[str, str], int]:
    """Open, undecided alerts by rating and clock (on_time, at_risk, breached), every pair present."""
    counts = {(rag, clock): 0 for rag in ("RED", "AMBER", "GREEN") for clock in ("on_time", "at_risk", "breached")}
    clock = case((AlertRecord.due_at <= now, "breached"), (AlertRecord.at_risk_at <= now, "at_risk"),
                 else_="on_time")
    rows = session.execute(select(AlertRecord.rag, clock, func.count())
                           .where(AlertRecord.status == "OPEN", AlertRecord.decided_at.is_(None))
                           .group_by(AlertRecord.rag, clock))
    for rag, state, n in rows:
        counts[(rag, state)] = n
    return counts
