"""The MASH enquiry's pages: opening one from an alert, the enquiry with its requests' clocks and
answers, its threshold decision, the manager's board of open requests, and the partner portal
where an agency's users answer its requests. Thin: the work is in enquiries.py and services/enquiry."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from mash.models import EnquiryRecord, InformationRequestRecord
from services.enquiry.adults import MAX_ADULTS, AdultRefused, checked_adults
from services.enquiry.adults import RELATIONS as ADULT_RELATIONS
from services.enquiry.consent import CHOICES, ConsentRefused, consent_decision
from services.enquiry.request_clock import ANSWERS, OVERDUE, RISK, SHOWN, state
from services.enquiry.request_view import LABELS
from services.enquiry.returns import ReturnRefused, checked_return
from services.enquiry.threshold import DecisionRefused, threshold_decision
from services.sharing.vocabulary import LAWFUL_BASES
from services.triage_app import enquiries
from services.triage_app.accounts import AGENCY, MANAGER, User
from services.triage_app.fields import NO_NUL, AlertId
from services.triage_app.pages import chronology, login_page, page
from services.triage_app.queue import person_timelines
from services.triage_app.web_session import alert_for, caseworker, cfg, checked_csrf, http_errors, session_user

router = APIRouter(include_in_schema=False)
ADULT_FIELDS = ("relation", "given_name", "family_name", "date_of_birth", "address_line", "postcode")
Text = Annotated[str, Form(max_length=8000, pattern=NO_NUL)]
Short = Annotated[str, Form(max_length=200, pattern=NO_NUL)]
Token = Annotated[str, Form(alias="csrf")]
PLAIN: dict[str, Any] = {"labels": LABELS, "answers_kinds": ANSWERS, "shown_states": SHOWN, "consent_choices": CHOICES,
                         "relations": enquiries.RELATIONS, "adult_relations": ADULT_RELATIONS,
                         "adult_rows": range(MAX_ADULTS),
                         "lawful_bases": LAWFUL_BASES}


def _writer(request: Request, token: str) -> User:
    user = session_user(request)
    if user is None:
        raise HTTPException(401, "log in first")
    checked_csrf(request, token)
    return user


# -- triage staff: open, follow and close an enquiry ----------------------------------------------------

@router.get("/alerts/{alert_id}/enquiry", response_class=HTMLResponse)
def enquiry_form(request: Request, alert_id: AlertId) -> Response:
    user = session_user(request)
    if user is None:
        return login_page(request)
    return _form(request, user, alert_id, "", 200)


def _form(request: Request, user: User, alert_id: str, error: str, status: int,
          given: dict[str, Any] | None = None) -> HTMLResponse:
    alert = alert_for(request, caseworker(user), alert_id)
    with cfg(request).sessions() as session:
        household = enquiries.household_of(session, alert.row.person_id, user.sharing_role)
    return page(request, "enquiry_new.html", status, user=user, alert=alert, error=error, given=given or {},
                agencies=cfg(request).catalogue.agencies, household=household, **PLAIN)


@router.post("/alerts/{alert_id}/enquiry")
async def open_enquiry(request: Request, alert_id: AlertId) -> Response:
    """The form: purpose, lawful basis, consent, agencies, household members the records name, and the
    adults the worker names (`adult<N>.<field>`, up to six rows)."""
    form = await request.form()
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    if len(form.multi_items()) > 200 or any(len(v) > 8000 or "\x00" in v for v in fields.values()):
        raise HTTPException(422, "a field is too long, holds a NUL character, or there are too many fields")
    user = _writer(request, fields.get("csrf", ""))
    config = cfg(request)
    purpose, lawful_basis = fields.get("purpose", ""), fields.get("lawful_basis", "")
    consent, consent_reason = fields.get("consent", ""), fields.get("consent_reason", "")
    agency = [v for k, v in form.multi_items() if k == "agency" and isinstance(v, str)]
    household = [v for k, v in form.multi_items() if k == "household" and isinstance(v, str)]
    rows = [{key: fields.get(f"adult{n}.{key}", "") for key in ADULT_FIELDS} for n in range(MAX_ADULTS)]
    given = {"purpose": purpose, "lawful_basis": lawful_basis, "consent": consent, "consent_reason": consent_reason,
             "agency": agency, "household": household, "adults": rows}
    try:
        named = checked_adults(rows, enquiries.london_today(config.clock()))
        decided = consent_decision(consent, consent_reason, user.username, user.role == MANAGER)
        with http_errors("no such alert on your queue"):
            opened = enquiries.open_enquiry(config.sessions, user, alert_id, config.catalogue, config.requests_clock(),
                                            agency, purpose, lawful_basis, decided, household, config.clock(),
                                            named)
    except (ConsentRefused, AdultRefused) as exc:
        return _form(request, user, alert_id, str(exc), 422, given)
    except HTTPException as exc:
        if exc.status_code != 422:
            raise
        return _form(request, user, alert_id, str(exc.detail), 422, given)
    if config.outbox:
        config.outbox.flush()
    return RedirectResponse(f"/enquiries/{opened.enquiry_id}", 303)


@router.get("/enquiries/{enquiry_id}", response_class=HTMLResponse)
def enquiry_page(request: Request, enquiry_id: AlertId) -> Response:
    user = session_user(request)
    if user is None:
        return login_page(request)
    return _enquiry(request, caseworker(user), enquiry_id, "", 200)


def _enquiry(request: Request, user: User, enquiry_id: str, error: str, status: int) -> HTMLResponse:
    config = cfg(request)
    with config.sessions() as session, http_errors("no such enquiry on your queue"):
        enquiry = enquiries.enquiry_for(session, user, enquiry_id)
        requests = enquiries.shown_requests(session, user, config.catalogue, config.requests_clock(), enquiry_id,
                                            config.clock())
        children = [p for p, relation in enquiries.subjects_of(session, enquiry_id)
                    if relation in ("child", "household")]
        groups = person_timelines(session, user, children)
    answered = [r for r in requests if r.answered_at is not None]
    chronologies = [(person, name, chronology(events, answered if person == enquiry.person_id else []))
                    for person, name, events in groups]
    return page(request, "enquiry.html", status, user=user, enquiry=enquiry, requests=requests, error=error,
                catalogue=config.catalogue, now=config.clock(), chronologies=chronologies, **PLAIN)


@router.post("/enquiries/{enquiry_id}/decision")
def close_enquiry(request: Request, enquiry_id: AlertId, token: Token, rationale: Text = "",
                  level: Annotated[int | None, Form()] = None, outcome: Short = "",
                  factor: Annotated[list[str] | None, Form(max_length=60)] = None) -> Response:
    user = caseworker(_writer(request, token))
    config = cfg(request)
    try:
        decision = threshold_decision(config.catalogue, level if level is not None else -1, outcome, factor or [],
                                      rationale)
    except DecisionRefused as exc:
        return _enquiry(request, user, enquiry_id, str(exc), 422)
    with http_errors("no such enquiry on your queue"):
        enquiries.close_enquiry(config.sessions, user, enquiry_id, decision, config.requests_clock(),
                                config.catalogue.feedback_working_days, config.clock())
    if config.outbox:
        config.outbox.flush()
    return RedirectResponse(f"/enquiries/{enquiry_id}", 303)


@router.get("/enquiries", response_class=HTMLResponse)
def board(request: Request) -> Response:
    """Every open request by agency with its time left: the manager's board."""
    user = session_user(request)
    if user is None:
        return login_page(request)
    if caseworker(user).role != MANAGER:
        raise HTTPException(403, "the board of every open request is for triage managers")
    config = cfg(request)
    profile, now = config.requests_clock(), config.clock()
    with config.sessions() as session:
        rows = session.scalars(enquiries.open_requests().order_by(InformationRequestRecord.due_at)).all()
        alerts = {e: a for e, a in session.execute(select(EnquiryRecord.enquiry_id, EnquiryRecord.alert_id).where(
            EnquiryRecord.enquiry_id.in_({r.enquiry_id for r in rows})))}
    by_agency: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        times = enquiries.times_of(row)
        by_agency.setdefault(row.agency, []).append({
            "request_id": row.request_id, "enquiry_id": row.enquiry_id, "alert_id": alerts.get(row.enquiry_id),
            "rag": row.rag, "state": state(profile, times, now), "due_at": times.due_at,
            "seconds_left": int((times.due_at - now).total_seconds())})
    counts = {agency: {"open": len(items), "at_risk": sum(i["state"] == RISK for i in items),
                       "overdue": sum(i["state"] == OVERDUE for i in items)} for agency, items in by_agency.items()}
    return page(request, "enquiry_board.html", user=user, by_agency=by_agency, counts=counts,
                catalogue=config.catalogue, **PLAIN)


# -- the partner portal ---------------------------------------------------------------------------------

def _agency_user(request: Request) -> User | None:
    user = session_user(request)
    if user is not None and user.role != AGENCY:
        raise HTTPException(403, "the portal is for partner agency accounts: triage staff work from the queue")
    return user


@router.get("/portal", response_class=HTMLResponse)
def portal(request: Request) -> Response:
    user = _agency_user(request)
    if user is None:
        return login_page(request)
    config = cfg(request)
    profile, now = config.requests_clock(), config.clock()
    with config.sessions() as session:
        rows = enquiries.agency_requests(session, user)
        closed = set(session.scalars(select(EnquiryRecord.enquiry_id).where(
            EnquiryRecord.enquiry_id.in_({r.enquiry_id for r in rows}), EnquiryRecord.status != enquiries.OPEN)))
        listed = [{"row": r, "state": "ENQUIRY_CLOSED" if r.enquiry_id in closed and not r.answered_at
                   else state(profile, enquiries.times_of(r), now),
                   "seconds_left": int((enquiries.times_of(r).due_at - now).total_seconds())} for r in rows]
        outcomes = enquiries.referral_outcomes(session, user, config.catalogue)
    agency = config.catalogue.agencies.get(user.agency or "")
    return page(request, "portal.html", user=user, listed=listed, agency=agency, outcomes=outcomes, **PLAIN)


@router.get("/portal/requests/{request_id}", response_class=HTMLResponse)
def portal_request(request: Request, request_id: AlertId) -> Response:
    user = _agency_user(request)
    if user is None:
        return login_page(request)
    return _portal_request(request, user, request_id, "", 200)


def _portal_request(request: Request, user: User, request_id: str, error: str, status: int,
                    given: dict[str, Any] | None = None) -> HTMLResponse:
    config = cfg(request)
    with config.sessions() as session, http_errors("no such request for your agency"):
        row = enquiries.agency_request(session, user, request_id)
        enquiry = session.get(EnquiryRecord, row.enquiry_id)
        still_open = enquiry is not None and enquiry.status == enquiries.OPEN
        shown_state = state(config.requests_clock(), enquiries.times_of(row), config.clock()) \
            if still_open or row.answered_at else "ENQUIRY_CLOSED"
    return page(request, "portal_request.html", status, user=user, row=row, purpose=enquiry.purpose if enquiry else "",
                state=shown_state, still_open=still_open, error=error, given=given or {},
                today=enquiries.london_today(config.clock()), **PLAIN)


@router.post("/portal/requests/{request_id}/acknowledge")
def portal_acknowledge(request: Request, request_id: AlertId, token: Token) -> Response:
    user = _writer(request, token)
    config = cfg(request)
    with http_errors("no such request for your agency"):
        enquiries.acknowledge(config.sessions, user, request_id, config.clock())
    return RedirectResponse(f"/portal/requests/{request_id}", 303)


@router.post("/portal/requests/{request_id}/answer")
async def portal_answer(request: Request, request_id: AlertId) -> Response:
    """The prompts' answers arrive as `prompt.<id>` fields: one per prompt the request asked."""
    form = await request.form()
    user = _writer(request, str(form.get("csrf", "")))
    config = cfg(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if any(len(v) > 8000 or "\x00" in v for v in fields.values()) or len(fields) > 60:
        raise HTTPException(422, "a field is too long, holds a NUL character, or there are too many fields")
    answers = {k.removeprefix("prompt."): v for k, v in fields.items() if k.startswith("prompt.")}
    systems = [s for s in fields.get("systems_searched", "").replace("\r", "").split("\n")]
    now = config.clock()
    with config.sessions() as session, http_errors("no such request for your agency"):
        row = enquiries.agency_request(session, user, request_id)
        prompts, sent_at = enquiries.prompts_of(row), row.sent_at
    try:
        searched_on = date.fromisoformat(fields["searched_on"]) if fields.get("searched_on") else None
        answer = checked_return(fields.get("answer", ""), prompts, answers, fields.get("summary", ""),
                                fields.get("declined_reason", ""), searched_on, systems,
                                enquiries.london_today(enquiries.aware(sent_at)), enquiries.london_today(now))
    except (ReturnRefused, ValueError) as exc:
        message = str(exc) if isinstance(exc, ReturnRefused) else "the search date is not a date (YYYY-MM-DD)"
        return _portal_request(request, user, request_id, message, 422, fields)
    with http_errors("no such request for your agency"):
        enquiries.record_return(config.sessions, user, request_id, answer, config.catalogue, config.policy(), now)
    return RedirectResponse("/portal", 303)
