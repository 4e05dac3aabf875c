"""The triage queue and an alert's page, read from the triage store for one user.

Workers see open alerts that are unclaimed or theirs; managers and auditors see every open alert.
The queue is ordered by rating, then by time left, so the red alert nearest its deadline is first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import orjson
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from mash.models import AlertActionRecord, AlertRecord, TimelineEventRecord, TriageDecisionRecord, UserRecord
from services.triage.clocks import AT_RISK, BREACHED, ON_TIME
from services.triage.scoring import Scoring
from services.triage_app.accounts import User
from services.triage_app.views import (
    ScoreSeen,
    SeenEvent,
    VisibleEvent,
    action_detail,
    amendment,
    may_read_rationale,
    rationale_withheld_note,
    score_seen,
    seen_event,
    visible_event,
    visible_values,
)

NAME_FIELDS = ("subject.given_name", "subject.family_name", "subject.date_of_birth")
CHUNK = 500  # keys per IN list


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class QueueRow:
    alert_id: str
    person_id: str
    child: str  # the name and date of birth the user's role may see, or a reference
    rag: str
    score: int | None  # None: it may rest on values withheld from the user's role (views.score_seen)
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
    reasons_withheld: bool  # the rating may rest on information withheld from the user's role
    timeline: list[VisibleEvent]
    in_alert: set[str]
    household: list[QueueRow]
    actions: list[tuple[datetime, str, str, str]]  # (at, action, actor, detail as the user may see it)
    decisions: list[ShownDecision]
    profile: str
    rated_by: str | None = None  # a person changed the rating
    hub_rag: str | None = None
    revision: int = 1  # what the person is looking at: a decision names it
    review: str | None = None  # the hub asks a person to re-rate
    follows: str | None = None  # the decided alert this one carries on from
    joined: dict[str, int] = field(default_factory=dict)  # event id -> the alert revision it joined at


@dataclass(frozen=True)
class ShownDecision:
    """A triage decision as one user may see it: the rationale only if they may read it."""

    alert_id: str
    outcome: str
    decided_by: str
    decided_at: datetime
    rag_at_decision: str
    audit_ref: str
    published_at: datetime | None
    rationale: str | None  # None: written from another sharing role's view (views.may_read_rationale)
    rationale_note: str = ""  # whose it is to read, in its place


def queue(session: Session, user: User, scoring: Scoring, now: datetime, limit: int = 100) -> QueuePage:
    """The user's queue; each row's score as their role may see it (views.score_seen)."""
    base = _open_for(user)
    rows = session.scalars(base.order_by(AlertRecord.rag_rank, AlertRecord.due_at, AlertRecord.opened_at)
                           .limit(limit)).all()
    counted = base.with_only_columns(
        func.count(), func.count().filter(AlertRecord.due_at <= now),
        func.count().filter(AlertRecord.at_risk_at <= now, AlertRecord.due_at > now)).order_by(None)
    total, breached, at_risk = session.execute(counted).one()
    names = _names(session, [r.person_id for r in rows], user)
    seen = _scores_seen(session, user, scoring, rows)
    return QueuePage([_row(r, now, names.get(r.person_id), seen[r.alert_id]) for r in rows], total, at_risk, breached)


def alert_page(session: Session, user: User, alert_id: str, scoring: Scoring, now: datetime) -> AlertPage:
    alert = session.get(AlertRecord, alert_id)
    if alert is None or not _may_see(user, alert):
        raise NotFound(alert_id)
    events = session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.person_id == alert.person_id)
                             .order_by(TimelineEventRecord.occurred_at)).all()
    timeline: list[VisibleEvent] = []
    in_alert = set(alert.event_ids)
    scored: list[SeenEvent] = []
    households: set[str] = set()
    revisions: dict[str, list[tuple[tuple[datetime, str], int]]] = {}  # record -> (order, place in timeline)
    for e in events:
        values = orjson.loads(e.values or "{}")
        seen = visible_event(e.event_id, e.event_type, e.source_agency, e.occurred_at, values, e.views,
                             user.sharing_role, e.withdrawn_fields)
        timeline.append(replace(seen, note=_standing(e)))
        revisions.setdefault(e.record_id or e.event_id, []).append((_revised_order(e), len(timeline) - 1))
        if e.event_id in in_alert and not e.withdrawn and not e.superseded_by:  # the records as they stand
            standing = seen_event(e.event_type, e.source_agency, _ms(e.occurred_at), values,
                                  e.views.get(user.sharing_role or "", ()))
            scored.append(standing)
            households.update(standing.values.get("context", {}).get("household_person_ids") or ())
    for places in revisions.values():  # each revision against the one before it
        order = [at for _, at in sorted(places)]
        for before, after in pairwise(order):
            timeline[after] = replace(timeline[after], amended=amendment(
                timeline[after].agency, timeline[before], timeline[after]))
    score = score_seen(scoring, alert.score, alert.indicators or (), scored)
    names = _names(session, [alert.person_id], user)
    history = list(session.scalars(select(AlertActionRecord).where(AlertActionRecord.alert_id == alert_id)
                                   .order_by(AlertActionRecord.id)))
    authors = _sharing_roles(session, {a.actor for a in history})
    return AlertPage(
        row=_row(alert, now, names.get(alert.person_id), score), status=alert.status,
        decided=alert.decided_at is not None, reasons=list(score.reasons), reasons_withheld=score.withheld,
        timeline=timeline, in_alert=in_alert,
        household=_household(session, user, households - {alert.person_id}, scoring, now),
        actions=[(a.at, a.action, a.actor, action_detail(a.action, a.detail, may_read_rationale(
            authors.get(a.actor), user.role, user.sharing_role))) for a in history],
        decisions=decisions_shown(session, user, session.scalars(
            select(TriageDecisionRecord).where(TriageDecisionRecord.alert_id == alert_id)
            .order_by(TriageDecisionRecord.decided_at))),
        profile=alert.profile, rated_by=alert.rag_set_by, hub_rag=alert.hub_rag,
        revision=alert.revision, review=alert.review, follows=alert.follows,
        joined=dict(zip(alert.event_ids, alert.joined or (), strict=False)),
    )


def decisions_shown(session: Session, user: User, rows: Iterable[TriageDecisionRecord]) -> list[ShownDecision]:
    """Decisions as the user may see them: each rationale only for its author's sharing role (as
    their account has it) and triage managers."""
    found = list(rows)
    authors = _sharing_roles(session, {d.decided_by for d in found})
    shown: list[ShownDecision] = []
    for d in found:
        readable = may_read_rationale(authors.get(d.decided_by), user.role, user.sharing_role)
        shown.append(ShownDecision(
            d.alert_id, d.outcome, d.decided_by, d.decided_at, d.rag_at_decision, d.audit_ref, d.published_at,
            d.rationale if readable else None, "" if readable else rationale_withheld_note(authors.get(d.decided_by))))
    return shown


def _sharing_roles(session: Session, usernames: set[str]) -> dict[str, str | None]:
    """Each author's sharing role: whose view their free text was written from."""
    if not usernames:
        return {}
    return {name: role for name, role in session.execute(
        select(UserRecord.username, UserRecord.sharing_role).where(UserRecord.username.in_(sorted(usernames))))}


def _scores_seen(session: Session, user: User, scoring: Scoring, alerts: Sequence[AlertRecord]) -> dict[str, ScoreSeen]:
    """Each alert's score as the user's role may see it, from its standing events (one query a chunk)."""
    wanted = sorted({e for a in alerts for e in a.event_ids})
    events: dict[str, SeenEvent] = {}
    for start in range(0, len(wanted), CHUNK):
        for e in session.execute(select(
                TimelineEventRecord.event_id, TimelineEventRecord.event_type, TimelineEventRecord.source_agency,
                TimelineEventRecord.occurred_at, TimelineEventRecord.values, TimelineEventRecord.views)
                .where(TimelineEventRecord.event_id.in_(wanted[start:start + CHUNK]),
                       TimelineEventRecord.withdrawn.is_(False), TimelineEventRecord.superseded_by.is_(None))):
            events[e.event_id] = seen_event(e.event_type, e.source_agency, _ms(e.occurred_at),
                                            orjson.loads(e.values or "{}"), e.views.get(user.sharing_role or "", ()))
    return {a.alert_id: score_seen(scoring, a.score, a.indicators or (),
                                   [events[e] for e in a.event_ids if e in events]) for a in alerts}


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


def _household(session: Session, user: User, person_ids: set[str], scoring: Scoring,
               now: datetime) -> list[QueueRow]:
    if not person_ids:
        return []
    rows = session.scalars(_open_for(user).where(AlertRecord.person_id.in_(sorted(person_ids)))).all()
    names = _names(session, [r.person_id for r in rows], user)
    seen = _scores_seen(session, user, scoring, rows)
    return [_row(r, now, names.get(r.person_id), seen[r.alert_id]) for r in rows]


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


def _row(alert: AlertRecord, now: datetime, child: str | None, seen: ScoreSeen) -> QueueRow:
    due, at_risk = _aware(alert.due_at), _aware(alert.at_risk_at)
    clock = ON_TIME
    if due is not None and now >= due:
        clock = BREACHED
    elif at_risk is not None and now >= at_risk:
        clock = AT_RISK
    return QueueRow(
        alert.alert_id, alert.person_id, child or f"child {alert.person_id[:8]}", alert.rag, seen.score,
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


def person_timelines(session: Session, user: User,
                     person_ids: list[str]) -> list[tuple[str, str, list[VisibleEvent]]]:
    """Each person's events as the user's role may see them, in date order, revisions marked: for a
    household enquiry's chronology, grouped by person. (person id, name as the role sees it, events)."""
    names = _names(session, person_ids, user)
    rows = session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.person_id.in_(person_ids))
                           .order_by(TimelineEventRecord.occurred_at)).all()
    by_person: dict[str, list[VisibleEvent]] = {p: [] for p in person_ids}
    for e in rows:
        seen = visible_event(e.event_id, e.event_type, e.source_agency, e.occurred_at, orjson.loads(e.values or "{}"),
                             e.views, user.sharing_role, e.withdrawn_fields)
        by_person[e.person_id].append(replace(seen, note=_standing(e)))
    return [(p, names.get(p, "name withheld from your role"), by_person[p]) for p in person_ids]
