"""The MASH enquiry and the partner portal as JSON: the same actions as the pages, for scripts,
other systems and the demo. Same sessions, roles and CSRF header as the rest of the API."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from mash.models import EnquiryRecord
from services.enquiry.adults import MAX_ADULTS, AdultRefused, checked_adults
from services.enquiry.consent import ConsentRefused, consent_decision
from services.enquiry.request_clock import state
from services.enquiry.returns import ReturnRefused, checked_return
from services.enquiry.threshold import DecisionRefused, threshold_decision
from services.triage_app import enquiries
from services.triage_app.accounts import AGENCY, MANAGER, User
from services.triage_app.api import READ, WITH_BODY, WRITE, refusals
from services.triage_app.fields import NO_NUL, AlertId
from services.triage_app.web_session import api_caseworker, api_user, api_writer, caseworker, cfg, http_errors

router = APIRouter(prefix="/api", responses=refusals(503))
Text = Field(default="", max_length=8000, pattern=NO_NUL)


class EnquiryBody(BaseModel):
    purpose: str = Field(min_length=1, max_length=enquiries.PURPOSE_CHARS, pattern=NO_NUL)
    lawful_basis: str = Field(max_length=48)
    consent: str = Field(max_length=24, description="GIVEN, REFUSED or NOT_SAFE_TO_SEEK (a manager's decision)")
    consent_reason: str = Field(default="", max_length=4000, pattern=NO_NUL)
    agencies: list[str] = Field(min_length=1, max_length=40)
    household: list[str] = Field(default=[], max_length=40)
    adults: list[dict[str, str]] = Field(default=[], max_length=MAX_ADULTS, description=(
        "adults the MASH asks about: relation (parent, carer, household_adult, risk), given_name, family_name, "
        "date_of_birth, address_line, postcode"))


class DecisionBody(BaseModel):
    level: int
    outcome: str = Field(max_length=32)
    factors: list[str] = Field(max_length=60)
    rationale: str = Field(max_length=8000, pattern=NO_NUL)


class AnswerBody(BaseModel):
    answer: str = Field(max_length=16, description="HELD, NIL or DECLINED")
    answers: dict[str, str] = Field(default={}, max_length=40, description="prompt id -> what is held")
    summary: str = Text
    declined_reason: str = Text
    searched_on: date | None = None
    systems_searched: list[str] = Field(default=[], max_length=20)


@router.post("/alerts/{alert_id}/enquiry", tags=["enquiry"], responses=refusals(*WITH_BODY))
def api_open(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId,
             body: EnquiryBody) -> dict[str, Any]:
    config = cfg(request)
    with http_errors("no such alert on your queue"):
        try:
            decided = consent_decision(body.consent, body.consent_reason, user.username, user.role == MANAGER)
            named = checked_adults(body.adults, enquiries.london_today(config.clock()))
        except (ConsentRefused, AdultRefused) as exc:
            raise ValueError(str(exc)) from None
        opened = enquiries.open_enquiry(config.sessions, caseworker(user), alert_id, config.catalogue,
                                        config.requests_clock(), body.agencies, body.purpose, body.lawful_basis,
                                        decided, body.household, config.clock(), named)
    if config.outbox:
        config.outbox.flush()
    return {"enquiry_id": opened.enquiry_id, "request_ids": list(opened.request_ids)}


@router.get("/enquiries/{enquiry_id}", tags=["enquiry"], responses=refusals(*READ, 404))
def api_enquiry(request: Request, user: Annotated[User, Depends(api_caseworker)],
                enquiry_id: AlertId) -> dict[str, Any]:
    config = cfg(request)
    with config.sessions() as session, http_errors("no such enquiry on your queue"):
        enquiry = enquiries.enquiry_for(session, user, enquiry_id)
        shown = enquiries.shown_requests(session, user, config.catalogue, config.requests_clock(), enquiry_id,
                                         config.clock())
    return {"enquiry_id": enquiry.enquiry_id, "alert_id": enquiry.alert_id, "status": enquiry.status,
            "rag": enquiry.rag, "consent": enquiry.consent, "level": enquiry.level, "outcome": enquiry.outcome,
            "factors": enquiry.factors, "requests": [
                {"request_id": r.request_id, "agency": r.agency, "state": r.state, "due_at": r.due_at.isoformat(),
                 "answered_at": r.answered_at.isoformat() if r.answered_at else None,
                 "answers": dict(r.answers) if r.answers is not None else None, "summary": r.summary,
                 "systems_searched": list(r.systems_searched),
                 "reminded_at": r.reminded_at.isoformat() if r.reminded_at else None,
                 "escalated_at": r.escalated_at.isoformat() if r.escalated_at else None} for r in shown]}


@router.post("/enquiries/{enquiry_id}/decision", tags=["enquiry"], responses=refusals(*WITH_BODY))
def api_close(request: Request, user: Annotated[User, Depends(api_writer)], enquiry_id: AlertId,
              body: DecisionBody) -> dict[str, str]:
    config = cfg(request)
    with http_errors("no such enquiry on your queue"):
        try:
            decision = threshold_decision(config.catalogue, body.level, body.outcome, body.factors, body.rationale)
        except DecisionRefused as exc:
            raise ValueError(str(exc)) from None
        audit_ref = enquiries.close_enquiry(config.sessions, caseworker(user), enquiry_id, decision,
                                            config.requests_clock(), config.catalogue.feedback_working_days,
                                            config.clock())
    if config.outbox:
        config.outbox.flush()
    return {"result": f"closed: {decision.outcome} ({audit_ref})"}


def _agency(user: Annotated[User, Depends(api_user)]) -> User:
    if user.role != AGENCY:
        raise HTTPException(403, "the portal is for partner agency accounts")
    return user


@router.get("/portal/requests", tags=["partner portal"], responses=refusals(*READ))
def api_portal(request: Request, user: Annotated[User, Depends(_agency)]) -> dict[str, Any]:
    config = cfg(request)
    with config.sessions() as session:
        rows = enquiries.agency_requests(session, user)
        purposes = {e.enquiry_id: (e.purpose, e.status) for e in session.scalars(select(EnquiryRecord).where(
            EnquiryRecord.enquiry_id.in_({r.enquiry_id for r in rows})))}
    now = config.clock()
    return {"requests": [
        {"request_id": r.request_id, "rag": r.rag, "purpose": purposes[r.enquiry_id][0],
         "state": "ENQUIRY_CLOSED" if purposes[r.enquiry_id][1] != enquiries.OPEN and not r.answered_at
         else state(config.requests_clock(), enquiries.times_of(r), now),
         "sent_at": enquiries.aware(r.sent_at).isoformat(), "due_at": enquiries.aware(r.due_at).isoformat(),
         "reminded_at": enquiries.aware(r.reminded_at).isoformat() if r.reminded_at else None,
         "prompts": r.prompts, "subjects": r.shared} for r in rows]}


@router.post("/portal/requests/{request_id}/acknowledge", tags=["partner portal"], responses=refusals(*WRITE))
def api_acknowledge(request: Request, user: Annotated[User, Depends(api_writer)],
                    request_id: AlertId) -> dict[str, str]:
    config = cfg(request)
    with http_errors("no such request for your agency"):
        enquiries.acknowledge(config.sessions, _agency(user), request_id, config.clock())
    return {"result": "acknowledged"}


@router.post("/portal/requests/{request_id}/answer", tags=["partner portal"],
             responses=refusals(*WITH_BODY))
def api_answer(request: Request, user: Annotated[User, Depends(api_writer)], request_id: AlertId,
               body: AnswerBody) -> dict[str, str]:
    config = cfg(request)
    now = config.clock()
    with http_errors("no such request for your agency"):
        with config.sessions() as session:
            row = enquiries.agency_request(session, _agency(user), request_id)
            prompts, sent_at = enquiries.prompts_of(row), row.sent_at
        try:
            answer = checked_return(body.answer, prompts, body.answers, body.summary, body.declined_reason,
                                    body.searched_on, body.systems_searched,
                                    enquiries.london_today(sent_at), enquiries.london_today(now))
        except ReturnRefused as exc:
            raise ValueError(str(exc)) from None
        audit_ref = enquiries.record_return(config.sessions, user, request_id, answer, config.catalogue,
                                            config.policy(), now)
    return {"result": f"recorded: {answer.answer} ({audit_ref})"}


@router.get("/portal/outcomes", tags=["partner portal"], responses=refusals(*READ))
def api_outcomes(request: Request, user: Annotated[User, Depends(_agency)]) -> dict[str, Any]:
    """The outcomes of the enquiries this agency's referrals opened: outcome and level only."""
    config = cfg(request)
    with config.sessions() as session:
        told = enquiries.referral_outcomes(session, user, config.catalogue)
    return {"outcomes": told}
