"""The MASH enquiry in the triage store: open one from an alert, send a request to each agency chosen,
record each agency's answer, close it with the threshold decision. The decisions are the pure
functions of services/enquiry; this module reads and writes rows and seals each step on the app's
audit chain (what was shared with which agency, and on what basis, is a sharing decision).

An agency user reaches only its own agency's requests (anything else is not found), and sees of each
only what the request shares: whom to search for, the purpose, the prompts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.models import AlertRecord, EnquiryRecord, EnquirySubjectRecord, InformationRequestRecord, TimelineEventRecord
from services.enquiry.adults import RELATIONS as ADULT_RELATIONS
from services.enquiry.adults import Adult
from services.enquiry.catalogue import Catalogue, Prompt
from services.enquiry.consent import ConsentDecision
from services.enquiry.request_clock import REMIND, RequestTimes, answered_on_time, chasing, due, state
from services.enquiry.request_view import StandingEvent, identifies, identity_for
from services.enquiry.return_sharing import return_views
from services.enquiry.returns import Return
from services.enquiry.threshold import ThresholdDecision
from services.sharing.policy import Policy
from services.sharing.vocabulary import LAWFUL_BASES
from services.triage.clocks import Profile, add_working_time
from services.triage_app import actions, sealed_enquiries
from services.triage_app.accounts import AGENCY, MANAGER, User
from services.triage_app.actions import Conflict, Refused
from services.triage_app.sealed_decisions import seal_action, sealed_record
from services.triage_store.store import parse_values

PURPOSE_CHARS = 2000
LONDON = ZoneInfo("Europe/London")
OPEN, CLOSED = "OPEN", "CLOSED"
RELATIONS = {"child": "the child", "household": "another child in the household", **ADULT_RELATIONS}


@dataclass(frozen=True)
class Opened:
    enquiry_id: str
    request_ids: tuple[str, ...]


def open_enquiry(sessions: sessionmaker[Session], user: User, alert_id: str, catalogue: Catalogue,
                 profile: Profile, agencies: Sequence[str], purpose: str, lawful_basis: str,
                 consent: ConsentDecision, household: Sequence[str], now: datetime,
                 adults: Sequence[Adult] = ()) -> Opened:
    """An enquiry on the alert with one request per agency chosen. Refused (ValueError, with what to
    change) if an agency is unknown, the purpose or basis is missing, the alert already has an open
    enquiry, or the policy lets an agency see nothing that identifies the child."""
    purpose = purpose.strip()
    if not purpose or len(purpose) > PURPOSE_CHARS or "\x00" in purpose:
        raise ValueError(f"say what the enquiry is for (at most {PURPOSE_CHARS} characters)")
    if lawful_basis not in LAWFUL_BASES:
        raise ValueError(f"lawful basis: one of {', '.join(LAWFUL_BASES)}")
    chosen = list(dict.fromkeys(agencies))
    unknown = [a for a in chosen if a not in catalogue.agencies]
    if unknown or not chosen:
        raise ValueError(f"choose the agencies to ask from {', '.join(catalogue.agencies)}")
    return actions.retrying(lambda: _open(sessions, user, alert_id, catalogue, profile, chosen, purpose,
                                          lawful_basis, consent, household, now, adults))


def _open(sessions: sessionmaker[Session], user: User, alert_id: str, catalogue: Catalogue, profile: Profile,
          chosen: list[str], purpose: str, lawful_basis: str, consent: ConsentDecision, household: Sequence[str],
          now: datetime, adults: Sequence[Adult]) -> Opened:
    with sessions.begin() as session:
        _lock(session, AlertRecord.__table__, AlertRecord.alert_id, alert_id)
        alert = actions.claimed(session, user, alert_id, "opening an enquiry on it")
        if session.scalar(select(EnquiryRecord.enquiry_id).where(EnquiryRecord.alert_id == alert_id,
                                                                 EnquiryRecord.status == OPEN)):
            raise Conflict("this alert already has an open enquiry: add to it or close it first")
        subjects = {alert.person_id: "child",
                    **{p: "household" for p in _household_named(session, alert, household, user.sharing_role)}}
        standing = _standing(session, list(subjects))
        enquiry_id = str(uuid.uuid4())
        named = {str(uuid.uuid4()): adult for adult in adults}
        requests = [_request(catalogue, profile, enquiry_id, agency, alert.rag, subjects, standing, now, named)
                    for agency in chosen]
        referral = _referral(session, alert)
        referrer = catalogue.referrer(referral.source_agency) if referral is not None else None
        audit_ref = actions.seal(session, alert, enquiry_id, user, now, {
            "kind": "enquiry_opened", "enquiry_id": enquiry_id, "purpose": purpose, "lawful_basis": lawful_basis,
            "consent": consent.choice, "consent_reason": consent.reason,
            "consent_authorised_by": consent.authorised_by, "subjects": subjects, "agencies": chosen,
            "adults": {key: {"relation": a.relation, **a.identity()} for key, a in named.items()},
            "referrer_agency": referrer.key if referrer else None})
        session.add(EnquiryRecord(
            enquiry_id=enquiry_id, alert_id=alert_id, person_id=alert.person_id, rag=alert.rag, purpose=purpose,
            lawful_basis=lawful_basis, consent=consent.choice, consent_reason=consent.reason,
            consent_authorised_by=consent.authorised_by, opened_by=user.username, opened_at=now, status=OPEN,
            audit_ref=audit_ref, referrer_agency=referrer.key if referrer else None,
            referral_event_id=referral.event_id if referral is not None and referrer else None))
        session.flush()  # the enquiry before the rows that name it (PostgreSQL checks the key at once)
        session.add_all(EnquirySubjectRecord(enquiry_id=enquiry_id, person_id=p, relation=r)
                        for p, r in subjects.items())
        session.add_all(EnquirySubjectRecord(enquiry_id=enquiry_id, person_id=key, relation=a.relation,
                                             identity=a.identity()) for key, a in named.items())
        for request in requests:
            request.audit_ref = actions.seal(session, alert, request.request_id, user, now, {
                "kind": "information_request", "enquiry_id": enquiry_id, "agency": request.agency,
                "sharing_role": request.sharing_role, "shared": request.shared, "prompts": request.prompts,
                "rag": request.rag, "lawful_basis": lawful_basis,
                "consent": consent.choice, "due_at": request.due_at.isoformat()})
            session.add(request)
        actions.log(session, alert, "enquiry opened", user.username,
                    f"requests to {', '.join(catalogue.agencies[a].label for a in chosen)}", now)
        return Opened(enquiry_id, tuple(r.request_id for r in requests))


def _referral(session: Session, alert: AlertRecord) -> TimelineEventRecord | None:
    """The event that made the referral: of those the alert opened with, the first to reach the hub."""
    joined = list(alert.joined or [])
    opening = [e for e, j in zip(alert.event_ids, joined, strict=False) if j <= 1] if joined else list(alert.event_ids)
    rows = session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.event_id.in_(opening))).all()
    return min(rows, key=lambda r: (aware(r.received_at), r.event_id), default=None)


def _household_named(session: Session, alert: AlertRecord, household: Sequence[str], role: str | None) -> list[str]:
    """The household members asked for, each one the child's own records name (context.household_person_ids)
    as the user's role sees them: an enquiry cannot be widened to a person picked from elsewhere."""
    if not household:
        return []
    known = household_of(session, alert.person_id, role)
    strangers = [p for p in household if p not in known]
    if strangers:
        raise ValueError("only the child's household, as the records name it, can be added to an enquiry")
    return list(dict.fromkeys(household))


def household_of(session: Session, person_id: str, role: str | None) -> list[str]:
    """Others in the child's household as the child's records name them, where the role may see the names."""
    found: list[str] = []
    for event in _standing(session, [person_id]):
        if "context.household_person_ids" not in event.views.get(role or "", ()):
            continue
        context = event.values.get("context")
        if isinstance(context, dict):
            found += [p for p in context.get("household_person_ids") or () if isinstance(p, str) and p != person_id]
    return list(dict.fromkeys(found))


def _standing(session: Session, person_ids: list[str]) -> list[StandingEvent]:
    rows = session.scalars(select(TimelineEventRecord).where(
        TimelineEventRecord.person_id.in_(person_ids), TimelineEventRecord.superseded_by.is_(None),
        TimelineEventRecord.withdrawn.is_(False))).all()
    return [StandingEvent(r.person_id, aware(r.occurred_at), parse_values(r.values), r.views) for r in rows]


def _request(catalogue: Catalogue, profile: Profile, enquiry_id: str, agency: str, rag: str,
             subjects: dict[str, str], standing: list[StandingEvent], now: datetime,
             adults: dict[str, Adult]) -> InformationRequestRecord:
    spec = catalogue.agencies[agency]
    identities = {person_id: identity_for(spec.sharing_role, [e for e in standing if e.person_id == person_id])
                  for person_id in subjects}
    # a household member the agency's role cannot identify is left out: naming them would only tell it
    # that another child exists, and it could not search for them
    shared: list[dict[str, object]] = [
        {"person_id": person_id, "relation": relation, "identity": identities[person_id]}
        for person_id, relation in subjects.items() if relation == "child" or identifies(identities[person_id])]
    shared += [{"person_id": key, "relation": adult.relation, "identity": adult.identity()}
               for key, adult in adults.items()]
    if not identifies(identities[next(iter(subjects))]):
        raise ValueError(f"the sharing policy lets {spec.label} ({spec.sharing_role}) see nothing that identifies "
                         "this child, so it cannot be asked to search: leave it out, or ask information governance "
                         "for a rule")
    at_risk, due_at = due(profile, rag, now)
    return InformationRequestRecord(
        request_id=str(uuid.uuid4()), enquiry_id=enquiry_id, agency=agency, sharing_role=spec.sharing_role,
        prompts=[{"id": p.id, "text": p.text} for p in spec.prompts], shared=shared, rag=rag, sent_at=now,
        at_risk_at=at_risk.astimezone(UTC), due_at=due_at.astimezone(UTC), audit_ref="")


# -- the partner portal -------------------------------------------------------------------------------

def agency_requests(session: Session, user: User) -> list[InformationRequestRecord]:
    """The agency's requests: open ones first by deadline, then answered ones, newest first."""
    rows = session.scalars(select(InformationRequestRecord).where(
        InformationRequestRecord.agency == _agency_of(user))).all()
    return sorted(rows, key=lambda r: (r.answered_at is not None, aware(r.due_at) if r.answered_at is None
                                       else -aware(r.answered_at).timestamp(), r.request_id))


def agency_request(session: Session, user: User, request_id: str) -> InformationRequestRecord:
    """One of the agency's requests; another agency's is not found (404), never refused (403): an
    agency user cannot learn that a request to someone else exists."""
    row = session.get(InformationRequestRecord, request_id)
    if row is None or row.agency != _agency_of(user):
        raise LookupError(request_id)
    return row


def acknowledge(sessions: sessionmaker[Session], user: User, request_id: str, now: datetime) -> None:
    """The agency is searching: recorded once, sealed (it changes the request's state on the board)."""
    actions.retrying(lambda: _acknowledge(sessions, user, request_id, now))


def _acknowledge(sessions: sessionmaker[Session], user: User, request_id: str, now: datetime) -> None:
    with sessions.begin() as session:
        _lock(session, InformationRequestRecord.__table__, InformationRequestRecord.request_id, request_id)
        row = agency_request(session, user, request_id)
        enquiry = session.get(EnquiryRecord, row.enquiry_id)
        if enquiry is None or enquiry.status != OPEN:
            raise Conflict("the enquiry has closed: nothing more is needed for this request")
        if row.acknowledged_at is not None:
            return
        seal_action(session, actions.signing_keys(), {
            "kind": "information_acknowledged", "id": str(uuid.uuid4()), "request_id": request_id,
            "alert_id": enquiry.alert_id, "person_id": enquiry.person_id, "alert_revision": None,
            "agency": row.agency, "by": user.username, "at": now.astimezone(UTC).isoformat()})
        row.acknowledged_at, row.acknowledged_by = now, user.username


def record_return(sessions: sessionmaker[Session], user: User, request_id: str, answer: Return,
                  catalogue: Catalogue, policy: Policy, now: datetime) -> str:
    """The agency's answer with the sharing policy's decision on who may read it, sealed together; its
    audit ref. Answered once: a second answer is refused (409)."""
    return record_system_return(sessions, user.username, _agency_of(user), request_id, answer, catalogue, policy,
                                now)


def record_system_return(sessions: sessionmaker[Session], answered_by: str, agency: str, request_id: str,
                         answer: Return, catalogue: Catalogue, policy: Policy, now: datetime) -> str:
    """The same, answered by `agency`'s system (its connector, on mash.returns.v1) as `answered_by`."""
    return actions.retrying(lambda: _record_return(sessions, answered_by, agency, request_id, answer, catalogue,
                                                   policy, now))


def _record_return(sessions: sessionmaker[Session], answered_by: str, agency: str, request_id: str,
                   answer: Return, catalogue: Catalogue, policy: Policy, now: datetime) -> str:
    with sessions.begin() as session:
        _lock(session, InformationRequestRecord.__table__, InformationRequestRecord.request_id, request_id)
        row = session.get(InformationRequestRecord, request_id, with_for_update=True)
        if row is None or row.agency != agency:
            raise LookupError(request_id)
        if row.answered_at is not None:
            raise Conflict("this request has been answered; contact the MASH to add to the answer")
        enquiry = session.get(EnquiryRecord, row.enquiry_id)
        if enquiry is None or enquiry.status != OPEN:
            raise Conflict("the enquiry has closed: contact the MASH if what you hold changes its decision")
        if row.agency not in catalogue.agencies:
            raise Conflict(f"{row.agency} is no longer in the enquiry catalogue: the MASH cannot decide who reads it")
        shared = return_views(policy, catalogue.agencies[row.agency], enquiry.consent, answer)
        audit_ref = seal_action(session, actions.signing_keys(), {
            "kind": "information_return", "id": str(uuid.uuid4()), "request_id": request_id,
            "alert_id": enquiry.alert_id, "person_id": enquiry.person_id, "alert_revision": None,
            "agency": row.agency, "answer": answer.answer, "answers": answer.answers, "summary": answer.summary,
            "declined_reason": answer.declined_reason,
            "searched_on": answer.searched_on.isoformat() if answer.searched_on else None,
            "systems_searched": list(answer.systems_searched), "by": answered_by,
            "at": now.astimezone(UTC).isoformat(), "policy_version": shared.policy_version,
            "decisions": [{"role": d.role, "outcome": d.outcome, "shared": list(d.shared), "rules": list(d.rule_ids),
                           "lawful_basis": list(d.lawful_basis), "override_reason": d.override_reason}
                          for d in shared.decisions]})
        row.views, row.policy_version = shared.views, shared.policy_version
        row.answer, row.answers, row.summary = answer.answer, answer.answers, answer.summary
        row.declined_reason, row.searched_on = answer.declined_reason, answer.searched_on
        row.systems_searched, row.answered_by, row.answered_at = list(answer.systems_searched), answered_by, now
        row.answer_audit_ref = audit_ref
        if row.acknowledged_at is None:
            row.acknowledged_at, row.acknowledged_by = now, answered_by
        on_time = answered_on_time(times_of(row))
        metrics.INFORMATION_RETURNS.labels(row.agency, answer.answer.lower(), "on_time" if on_time else "late").inc()
        metrics.INFORMATION_RETURN_SECONDS.labels(row.agency).observe((now - aware(row.sent_at)).total_seconds())
        return audit_ref


def _lock(session: Session, table: Any, column: Any, key: str) -> None:
    """Hold the row for the rest of the transaction before reading it: a row lock on PostgreSQL; on
    SQLite, which has none, the write lock of the whole database (taken by any write), so two people
    acting on one row at once are served one after the other and the second sees the first's work."""
    session.execute(update(table).where(column == key).values({column.key: column}))


def _agency_of(user: User) -> str:
    if user.role != AGENCY or not user.agency:
        raise Refused("the portal is for partner agency accounts")
    return user.agency


# -- the enquiry as triage staff see it ----------------------------------------------------------------

@dataclass(frozen=True)
class ShownRequest:
    request_id: str
    agency: str
    label: str
    state: str
    sent_at: datetime
    due_at: datetime
    answered_at: datetime | None
    answered_by: str | None
    searched_on: date | None
    systems_searched: tuple[str, ...]
    answers: tuple[tuple[str, str], ...] | None  # (prompt, answer); None: not for this user's role
    summary: str | None
    declined_reason: str | None
    reminded_at: datetime | None = None  # the agency reminded (at risk)
    escalated_at: datetime | None = None  # the managers told (overdue)


def subjects_of(session: Session, enquiry_id: str) -> list[tuple[str, str]]:
    """(person id, relation) of the enquiry's subjects, the child first."""
    rows = session.scalars(select(EnquirySubjectRecord).where(EnquirySubjectRecord.enquiry_id == enquiry_id)).all()
    return sorted(((r.person_id, r.relation) for r in rows), key=lambda s: (s[1] != "child", s[1], s[0]))


def enquiry_for(session: Session, user: User, enquiry_id: str) -> EnquiryRecord:
    enquiry = session.get(EnquiryRecord, enquiry_id)
    alert = session.get(AlertRecord, enquiry.alert_id) if enquiry is not None else None
    if enquiry is None or alert is None or not (user.sees_all or alert.claimed_by in (None, user.username)):
        raise LookupError(enquiry_id)
    return enquiry


def shown_requests(session: Session, user: User, catalogue: Catalogue, profile: Profile, enquiry_id: str,
                   now: datetime) -> list[ShownRequest]:
    """Each request's state and the answer, as the sharing policy let the user's role read it (decided
    and sealed when the answer was recorded): a field of the answer outside the role's view is not shown."""
    rows = session.scalars(select(InformationRequestRecord).where(
        InformationRequestRecord.enquiry_id == enquiry_id).order_by(InformationRequestRecord.agency)).all()
    return [_shown(r, catalogue, profile, user, now) for r in rows]


def _shown(r: InformationRequestRecord, catalogue: Catalogue, profile: Profile, user: User,
           now: datetime) -> ShownRequest:
    label = catalogue.agencies[r.agency].label if r.agency in catalogue.agencies else r.agency
    prompts = {p["id"]: p["text"] for p in r.prompts}
    seen = set((r.views or {}).get(user.sharing_role or "", ())) if r.answered_at else set()
    shown_state = state(profile, times_of(r), now)
    if r.answered_at and "payload.answer" not in seen:
        shown_state = "ANSWERED"
    answers = tuple((prompts.get(k, k), v) for k, v in (r.answers or {}).items() if f"answers.{k}" in seen)
    return ShownRequest(
        r.request_id, r.agency, label, shown_state, aware(r.sent_at), aware(r.due_at),
        aware(r.answered_at) if r.answered_at else None, r.answered_by,
        r.searched_on if "payload.searched_on" in seen else None,
        tuple(r.systems_searched or ()) if "payload.systems_searched" in seen else (),
        answers if r.answered_at and seen else None,
        r.summary if "payload.summary" in seen else None,
        r.declined_reason if "payload.declined_reason" in seen else None,
        aware(r.reminded_at) if r.reminded_at else None, aware(r.escalated_at) if r.escalated_at else None)


def times_of(row: InformationRequestRecord) -> RequestTimes:
    return RequestTimes(row.rag, aware(row.sent_at), aware(row.due_at),
                        aware(row.acknowledged_at) if row.acknowledged_at else None,
                        aware(row.answered_at) if row.answered_at else None, row.answer,
                        aware(row.reminded_at) if row.reminded_at else None,
                        aware(row.escalated_at) if row.escalated_at else None)


def close_enquiry(sessions: sessionmaker[Session], user: User, enquiry_id: str, decision: ThresholdDecision,
                  profile: Profile, feedback_working_days: int, now: datetime) -> str:
    """The threshold decision, sealed; its audit ref. Sent to mash.decisions.v1 by the outbox, and the
    outcome to the referring agency, due within `feedback_working_days` of the profile's calendar."""
    return actions.retrying(lambda: _close(sessions, user, enquiry_id, decision, profile, feedback_working_days, now))


def decision_id(enquiry_id: str) -> str:
    """The id the threshold decision is sealed under (one per enquiry): its audit entry's key."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mash:enquiry-decision:{enquiry_id}"))


def _close(sessions: sessionmaker[Session], user: User, enquiry_id: str, decision: ThresholdDecision,
           profile: Profile, feedback_working_days: int, now: datetime) -> str:
    with sessions.begin() as session:
        _lock(session, EnquiryRecord.__table__, EnquiryRecord.enquiry_id, enquiry_id)
        enquiry = enquiry_for(session, user, enquiry_id)
        if not user.can_act:
            raise Refused("this account is read-only")
        alert = session.get(AlertRecord, enquiry.alert_id, with_for_update=True)
        assert alert is not None
        if alert.claimed_by != user.username and user.role != MANAGER:
            raise Refused("claim the alert before recording the enquiry's decision")
        if enquiry.status != OPEN:
            raise Conflict("this enquiry is closed: its decision is recorded")
        audit_ref = actions.seal(session, alert, decision_id(enquiry_id), user, now, {
            "kind": "enquiry_decision", "enquiry_id": enquiry_id, "level": decision.level,
            "outcome": decision.outcome, "factors": list(decision.factors), "rationale": decision.rationale})
        if enquiry.referrer_agency:
            calendar = profile.calendar
            day = datetime.combine(date.min, calendar.day_end) - datetime.combine(date.min, calendar.day_start)
            enquiry.feedback_due_at = add_working_time(calendar, now, day * feedback_working_days).astimezone(UTC)
        enquiry.status, enquiry.level, enquiry.outcome = CLOSED, decision.level, decision.outcome
        enquiry.factors, enquiry.rationale = list(decision.factors), decision.rationale
        enquiry.decided_by, enquiry.decided_at, enquiry.decision_audit_ref = user.username, now, audit_ref
        actions.log(session, alert, "enquiry closed", user.username, decision.outcome, now)
        return audit_ref


def prompts_of(row: InformationRequestRecord) -> list[Prompt]:
    return [Prompt(p["id"], p["text"]) for p in row.prompts]


def request_message(row: InformationRequestRecord, enquiry: EnquiryRecord) -> dict[str, Any]:
    """The request as `mash.requests.<agency>.v1` carries it: what the row shares, and nothing else."""
    return {"request_id": row.request_id, "enquiry_id": row.enquiry_id, "agency": row.agency,
            "purpose": enquiry.purpose, "lawful_basis": enquiry.lawful_basis, "consent": enquiry.consent,
            "rag": row.rag, "sent_at": _ms(row.sent_at), "due_at": _ms(row.due_at),
            "prompts": [{"id": p["id"], "text": p["text"]} for p in row.prompts],
            "subjects": [{"person_id": s["person_id"], "relation": s["relation"],
                          "identity": dict(s["identity"])} for s in row.shared],  # type: ignore[call-overload]
            "audit_ref": row.audit_ref}


def london_today(moment: datetime) -> date:
    """The date in the MASH's local time: what an agency means by searched 'today'."""
    return aware(moment).astimezone(LONDON).date()


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(aware(moment).timestamp() * 1000)


# -- clocks: chasing, and the counts for metrics --------------------------------------------------------

def chase(sessions: sessionmaker[Session], profile: Profile, now: datetime) -> list[tuple[str, str, str]]:
    """Remind each agency once of a request at risk, and escalate to the managers once when overdue
    (the board and the overdue alert show it); the (request id, agency, remind|escalate) done."""
    done: list[tuple[str, str, str]] = []
    with sessions.begin() as session:
        rows = session.scalars(select(InformationRequestRecord).join(
            EnquiryRecord, EnquiryRecord.enquiry_id == InformationRequestRecord.enquiry_id).where(
            EnquiryRecord.status == OPEN,
            InformationRequestRecord.answered_at.is_(None), InformationRequestRecord.at_risk_at <= now,
            (InformationRequestRecord.reminded_at.is_(None)) | (InformationRequestRecord.escalated_at.is_(None)))
            .with_for_update(skip_locked=True)).all()
        for row in rows:
            for kind in chasing(profile, times_of(row), now):
                if kind == REMIND:
                    row.reminded_at = now
                else:
                    row.escalated_at = now
                metrics.REQUEST_CHASES.labels(row.agency, kind).inc()
                done.append((row.request_id, row.agency, kind))
    return done


def open_requests() -> Any:
    """Requests waiting for an answer: unanswered, of an enquiry still open (a closed enquiry's are over)."""
    return select(InformationRequestRecord).join(
        EnquiryRecord, EnquiryRecord.enquiry_id == InformationRequestRecord.enquiry_id).where(
        EnquiryRecord.status == OPEN, InformationRequestRecord.answered_at.is_(None))


def open_request_counts(session: Session, profile: Profile, now: datetime) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for row in session.scalars(open_requests()):
        key = (row.agency, state(profile, times_of(row), now).lower())
        counts[key] = counts.get(key, 0) + 1
    return counts


def referral_outcomes(session: Session, user: User, catalogue: Catalogue) -> list[dict[str, Any]]:
    """What the agency is told of the enquiries its referrals opened: the outcome and level, when
    decided, and which of its events made the referral; never the rationale or the factors."""
    rows = session.scalars(select(EnquiryRecord).where(
        EnquiryRecord.referrer_agency == _agency_of(user), EnquiryRecord.status == CLOSED)
        .order_by(EnquiryRecord.decided_at.desc()).limit(200)).all()
    keys = actions.signing_keys()
    rows = [e for e in rows if not sealed_enquiries.decision_differences(  # an edited row tells no one
        e, decision_id(e.enquiry_id), sealed_record(session, decision_id(e.enquiry_id), keys)[0],
        sealed_record(session, e.enquiry_id, keys)[0])]
    return [{"enquiry_id": e.enquiry_id, "referral_event_id": e.referral_event_id, "outcome": e.outcome,
             "outcome_text": catalogue.outcomes.get(e.outcome or "", e.outcome), "level": e.level,
             "decided_at": aware(e.decided_at).isoformat() if e.decided_at else None,
             "due_at": aware(e.feedback_due_at).isoformat() if e.feedback_due_at else None} for e in rows]
