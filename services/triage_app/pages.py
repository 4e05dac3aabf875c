"""The pages triage staff work in: log in, the queue (kept current by a small script), an
alert with the child's timeline, the actions on it, and the audit views."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from mash.models import EnquiryRecord, TriageDecisionRecord, UserRecord
from services.enquiry.request_clock import SHOWN
from services.sharing import audit_store
from services.sharing.explain import explain
from services.triage_app import actions
from services.triage_app import enquiries as enquiry_rows
from services.triage_app.accounts import AGENCY, APP_ROLES, AUDITOR, MANAGER, WORKER, User
from services.triage_app.fields import NO_NUL, AlertId, EventId
from services.triage_app.matches import open_tasks
from services.triage_app.queue import decisions_shown, queue
from services.triage_app.web_session import (
    act,
    alert_for,
    answer_match,
    caseworker,
    cfg,
    checked_csrf,
    checked_login_csrf,
    csrf,
    log_in,
    log_out,
    seconds_left,
    session_user,
    set_cookies,
    web_session,
)

router = APIRouter(include_in_schema=False)
LONDON = ZoneInfo("Europe/London")
LOGIN_FAILED = ("Wrong username or password, or too many failed attempts from here: wait a few minutes "
                "and try again, or ask a triage manager.")
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


def chronology(timeline: list[Any], returns: list[Any]) -> list[tuple[str, Any]]:
    """The child's events and the agencies' answers to the MASH's requests, in date order: what each
    agency reported, and what each said it held when asked ("event" or "return", the item)."""
    dated = [(_utc(e.occurred_at), 0, "event", e) for e in timeline]
    dated += [(_utc(r.answered_at), 1, "return", r) for r in returns]
    return [(kind, item) for _, _, kind, item in sorted(dated, key=lambda d: (d[0], d[1]))]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def field_label(name: str) -> str:
    """A field as a practitioner reads it: `payload.incident_type` -> "Incident type"."""
    key = name.partition(".")[2] or name
    return FIELD_LABELS.get(name) or key.replace("_", " ").capitalize()


def event_label(event_type: str | None) -> str:
    """`police.public_protection_notification` -> "Police: public protection notification"."""
    if not event_type:
        return ""
    agency, _, kind = event_type.partition(".")
    return f"{agency.replace('_', ' ').capitalize()}: {kind.replace('_', ' ')}"


FIELD_LABELS = {"subject.nhs_number": "NHS number", "subject.upn": "UPN (unique pupil number)",
                "subject.date_of_birth": "Date of birth", "context.household_person_ids": "Others in the household",
                "link.link_method": "How the records were linked", "link.match_score": "Match score",
                "payload.risk_grading": "Police risk grading", "payload.school_urn": "School (URN)"}


def _london(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(LONDON).strftime("%a %d %b %Y %H:%M")


def _left(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    sign, seconds = ("overdue by " if seconds < 0 else ""), abs(seconds)
    hours, minutes = divmod(seconds // 60, 60)
    return f"{sign}{hours}h {minutes:02d}m" if hours < 48 else f"{sign}{hours // 24}d {hours % 24}h"


templates.env.filters.update(london=_london, left=_left, field_label=field_label, event_label=event_label)
templates.env.globals.update(outcomes=actions.OUTCOMES, app_roles=APP_ROLES, shown_states=SHOWN,
                             events_only=lambda timeline: chronology(timeline, []))


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, {"csrf": csrf(request), "session_left": seconds_left(request),
                                                          "refresh": cfg(request).refresh_seconds, **context},
                                          status_code=status)
    set_cookies(request, response)
    return response


def login_page(request: Request, status: int = 401, message: str = "") -> HTMLResponse:
    """Unauthenticated: the log-in form, with 401 so no client mistakes it for the page it asked for."""
    return page(request, "login.html", status, user=None, message=message)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return login_page(request, 200)


@router.post("/login")
def login(request: Request, username: Annotated[str, Form(max_length=64, pattern=NO_NUL)],
          password: Annotated[str, Form(max_length=256)], token: Annotated[str, Form(alias="csrf")]) -> Response:
    checked_login_csrf(request, token)
    if log_in(request, username, password) is None:
        return login_page(request, 401, LOGIN_FAILED)
    response = RedirectResponse("/", 303)
    set_cookies(request, response)
    return response


@router.post("/logout")
def logout(request: Request, token: Annotated[str, Form(alias="csrf")]) -> Response:
    if web_session(request, touch=False) is not None:  # an expired session has nothing left to end
        checked_csrf(request, token)
    response = RedirectResponse("/login", 303)
    log_out(request, response)
    return response


@router.post("/session/extend")
def extend_session(request: Request, token: Annotated[str, Form(alias="csrf")]) -> Response:
    """Stay logged in: the warning's button (WCAG 2.2.1). Records a use now and says how long the
    session has; 401 when it has already ended."""
    if web_session(request, touch=False) is None:
        return JSONResponse({"detail": "the session has ended: log in again"}, 401)
    checked_csrf(request, token)  # before the use is recorded: another site cannot keep a session alive
    del request.state.web_session  # looked up again, this time recording the use
    web_session(request, extend=True)
    return JSONResponse({"seconds_left": seconds_left(request)})


@router.get("/", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    user = session_user(request)
    if user is not None and user.role == AUDITOR:  # their home is the audit trail
        return RedirectResponse(request.url_for("audit_page"), 303)
    if user is not None and user.role == AGENCY:  # theirs is their agency's requests
        return RedirectResponse("/portal", 303)
    return _queue(request, "queue.html")


@router.get("/queue/rows", response_class=HTMLResponse)
def queue_rows(request: Request) -> HTMLResponse:
    """The queue's rows alone, for the page's script to refresh them: no sign anyone is there, so it
    does not keep the session from idling out."""
    return _queue(request, "_rows.html", touch=False)


def _queue(request: Request, template: str, touch: bool = True) -> HTMLResponse:
    user = session_user(request, touch)
    if user is None:
        return login_page(request)
    caseworker(user)
    with cfg(request).sessions() as session:
        found = queue(session, user, cfg(request).scoring, cfg(request).clock())
    return page(request, template, user=user, queue=found)


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_view(request: Request, alert_id: AlertId) -> HTMLResponse:
    user = session_user(request)
    if user is None:
        return login_page(request)
    return _alert_page(request, user, alert_id, request.query_params.get("notice", ""))


def _alert_page(request: Request, user: User, alert_id: str, notice: str, seen: int | None = None) -> HTMLResponse:
    found = alert_for(request, caseworker(user), alert_id)
    with cfg(request).sessions() as session:
        workers = list(session.scalars(select(UserRecord.username).where(
            UserRecord.active.is_(True), UserRecord.role.in_((WORKER, MANAGER))).order_by(UserRecord.username)))
        enquiries = session.scalars(select(EnquiryRecord).where(EnquiryRecord.alert_id == alert_id)
                                    .order_by(EnquiryRecord.opened_at)).all()
        returns = [r for e in enquiries for r in enquiry_rows.shown_requests(
            session, user, cfg(request).catalogue, cfg(request).requests_clock(), e.enquiry_id, cfg(request).clock())
            if r.answered_at is not None] if enquiries else []
    return page(request, "alert.html", user=user, alert=found, workers=workers if user.role == MANAGER else [],
                notice=notice, seen=seen, enquiries=enquiries, chronology=chronology(found.timeline, returns))


@router.post("/alerts/{alert_id}/{action}")
def alert_action(request: Request, alert_id: AlertId, action: str, token: Annotated[str, Form(alias="csrf")],
                 outcome: Annotated[str, Form()] = "",
                 rationale: Annotated[str, Form(max_length=8000, pattern=NO_NUL)] = "",
                 to: Annotated[str, Form(max_length=64, pattern=NO_NUL)] = "",
                 rag: Annotated[str, Form(max_length=8)] = "",
                 revision: Annotated[int | None, Form()] = None) -> Response:
    user = session_user(request)
    if user is None:
        raise HTTPException(401, "log in first")
    checked_csrf(request, token)
    if action == "decision" and revision is None:
        raise HTTPException(422, "a decision names the alert revision it was made on; reload the alert")
    try:
        notice = act(request, user, alert_id, action, outcome=outcome, rationale=rationale, to=to, rag=rag,
                     revision=revision)
    except HTTPException as exc:
        if exc.status_code != 409 or action != "decision":
            raise
        # the alert as it is now, why nothing was recorded, and what is new since the revision decided on
        response = _alert_page(request, user, alert_id, str(exc.detail), seen=revision)
        response.status_code = 409
        return response
    return RedirectResponse(request.url_for("alert_view", alert_id=alert_id).include_query_params(notice=notice),
                            303)


@router.get("/matches", response_class=HTMLResponse)
def matches_page(request: Request) -> HTMLResponse:
    user = session_user(request)
    if user is None:
        return login_page(request)
    with cfg(request).sessions() as session:
        tasks = open_tasks(session, caseworker(user))
    return page(request, "matches.html", user=user, tasks=tasks, notice=request.query_params.get("notice", ""))


@router.post("/matches/{event_id}/{verdict}")
def match_answer(request: Request, event_id: EventId, verdict: str,
                 token: Annotated[str, Form(alias="csrf")]) -> Response:
    user = session_user(request)
    if user is None:
        raise HTTPException(401, "log in first")
    checked_csrf(request, token)
    if verdict not in ("confirm", "reject"):
        raise HTTPException(404, "answer confirm or reject")
    notice = answer_match(request, user, event_id, verdict == "confirm")
    return RedirectResponse(request.url_for("matches_page").include_query_params(notice=notice), 303)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> HTMLResponse:
    user = _audit_reader(request)
    if user is None:
        return login_page(request)
    with cfg(request).sessions() as session:
        decisions = decisions_shown(session, user, session.scalars(
            select(TriageDecisionRecord).order_by(TriageDecisionRecord.decided_at.desc()).limit(200)))
        entries = audit_store.count(session)
    return page(request, "audit.html", user=user, decisions=decisions, entries=entries)


@router.get("/audit/events/{event_id}", response_class=HTMLResponse)
def audit_event(request: Request, event_id: EventId) -> HTMLResponse:
    """Why each role saw what it saw of one event: the hub's sharing entries, in plain English."""
    user = _audit_reader(request)
    if user is None:
        return login_page(request)
    with cfg(request).sessions() as session:
        entries = [{**s.record, "decisions": orjson.loads(s.decisions) if s.decisions else []}
                   for s in audit_store.for_event(session, event_id) if "kind" not in s.record]
    return page(request, "audit_event.html", user=user, event_id=event_id, text=explain(entries))


def _audit_reader(request: Request) -> User | None:
    """The user, if they may read the audit trail (None: not logged in; 403: not their role)."""
    user = session_user(request)
    if user is not None and user.role not in (AUDITOR, MANAGER):
        raise HTTPException(403, "the audit trail is for auditors and triage managers")
    return user

