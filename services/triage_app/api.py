"""The JSON API: the same actions as the pages, for other systems and scripts (OpenAPI at
/api/openapi.json). Log in with POST /api/login; send its csrf_token as X-CSRF-Token on writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.triage_app import actions
from services.triage_app.accounts import User
from services.triage_app.fields import NO_NUL, SAYS_SOMETHING, AlertId, EventId
from services.triage_app.matches import open_tasks
from services.triage_app.queue import queue
from services.triage_app.web_session import (
    act,
    alert_for,
    answer_match,
    api_caseworker,
    api_writer,
    cfg,
    log_in,
    log_out,
    set_cookies,
)


class Problem(BaseModel):
    """Why the request was refused, in words."""

    detail: str


class FieldError(BaseModel):
    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class Invalid(BaseModel):
    """A request the API cannot take: what is wrong with each field, or in words."""

    detail: list[FieldError] | str


Answers = dict[int | str, dict[str, Any]]
REFUSALS: dict[int, tuple[type[BaseModel], str]] = {
    400: (Problem, "the body is not JSON (read before the session is looked at)"),
    401: (Problem, "not logged in: no session, or it has ended (idle, too old, logged out, password changed)"),
    403: (Problem, "not for your role, a read-only account, or (on a write) a missing or wrong X-CSRF-Token"),
    404: (Problem, "no such alert or possible match that you may see"),
    409: (Problem, "the alert or match is not in a state that allows it (claimed, decided, revised since read)"),
    422: (Invalid, "the request is malformed"),
    503: (Problem, "the database is unavailable just now; try again after Retry-After seconds"),
}


def refusals(*codes: int) -> Answers:
    """The error answers an operation may give, for its OpenAPI description."""
    return {code: {"model": REFUSALS[code][0], "description": REFUSALS[code][1]} for code in codes}


READ = (401, 403, 422)
WRITE = (401, 403, 404, 409, 422)
WITH_BODY = (*WRITE, 400)

router = APIRouter(prefix="/api", responses=refusals(503))


class LoginResult(BaseModel):
    user: str
    role: str
    csrf_token: str = Field(description="send as X-CSRF-Token on every write of this session")


class Result(BaseModel):
    result: str


class LoginBody(BaseModel):
    username: str = Field(max_length=64, pattern=NO_NUL)
    password: str = Field(max_length=256)


class AssignBody(BaseModel):
    to: str = Field(max_length=64, pattern=NO_NUL, description="username of a triage worker or manager")


class DecisionBody(BaseModel):
    outcome: str = Field(pattern=f"^({'|'.join(actions.OUTCOMES)})$")
    rationale: str = Field(min_length=1, max_length=actions.MAX_RATIONALE, pattern=SAYS_SOMETHING)
    alert_revision: int = Field(ge=1, description="the alert's `revision` as you read it: if the hub has revised "
                                "the alert since, the answer is 409 and says what changed")


@router.post("/login", tags=["session"], response_model=LoginResult, responses=refusals(400, 401, 422))
def api_login(request: Request, response: Response, body: LoginBody) -> dict[str, Any]:
    """Start a session (cookie); returns the CSRF token to send as X-CSRF-Token on writes. The
    session ends after MASH_TRIAGE_SESSION_IDLE_MINUTES unused, MASH_TRIAGE_SESSION_MAX_HOURS in all,
    at log-out, or when the password changes."""
    found = log_in(request, body.username, body.password)
    if found is None:
        raise HTTPException(401, "wrong username or password, or too many failed attempts from here")
    user, token = found
    set_cookies(request, response)
    return {"user": user.username, "role": user.role, "csrf_token": token}


@router.post("/logout", tags=["session"], response_model=Result, responses=refusals(401, 403))
def api_logout(request: Request, response: Response, _: Annotated[User, Depends(api_writer)]) -> dict[str, str]:
    """End this session on the server: the cookie, wherever it was copied, logs no one in after."""
    log_out(request, response)
    return {"result": "logged out"}


@router.get("/alerts", tags=["queue"], responses=refusals(*READ))
def api_queue(request: Request, user: Annotated[User, Depends(api_caseworker)], limit: int = 100) -> dict[str, Any]:
    """Open alerts you may work, most urgent first: by rating, then by time left. An alert's `score`
    is null when it may rest on information withheld from your role (its rating is always shown)."""
    config = cfg(request)
    with config.sessions() as session:
        found = queue(session, user, config.scoring, config.clock(), limit=max(1, min(limit, 500)))
    return {"total": found.total, "at_risk": found.at_risk, "breached": found.breached,
            "alerts": [r.as_json() for r in found.rows]}


@router.get("/alerts/{alert_id}", tags=["queue"], responses=refusals(*READ, 404))
def api_alert(request: Request, user: Annotated[User, Depends(api_caseworker)], alert_id: AlertId) -> dict[str, Any]:
    """One alert with the child's timeline: of each event, only your role's view. `reasons` are those
    found in your view; `reasons_withheld` says the rating may also rest on information withheld
    from your role, and then `score` is null (no number or count gives the withheld part away)."""
    found = alert_for(request, user, alert_id)
    return {**found.row.as_json(), "status": found.status, "decided": found.decided, "reasons": found.reasons,
            "revision": found.revision, "review": found.review, "follows": found.follows,
            "reasons_withheld": found.reasons_withheld, "household": [h.as_json() for h in found.household],
            "timeline": [{"event_id": e.event_id, "event_type": e.event_type, "agency": e.agency,
                          "occurred_at": e.occurred_at.isoformat(), "in_alert": e.event_id in found.in_alert,
                          "withheld": e.withheld, "fields": dict(e.fields), "standing": e.note,
                          "amended": e.amended, "withdrawn_fields": dict(e.withdrawn_fields)}
                         for e in found.timeline]}


@router.post("/alerts/{alert_id}/claim", tags=["actions"], response_model=Result, responses=refusals(*WRITE))
def api_claim(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId) -> dict[str, str]:
    return {"result": act(request, user, alert_id, "claim")}


@router.post("/alerts/{alert_id}/unclaim", tags=["actions"], response_model=Result,
             responses=refusals(*WRITE))
def api_unclaim(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId) -> dict[str, str]:
    return {"result": act(request, user, alert_id, "unclaim")}


@router.post("/alerts/{alert_id}/assign", tags=["actions"], response_model=Result,
             responses=refusals(*WITH_BODY))
def api_assign(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId,
               body: AssignBody) -> dict[str, str]:
    """Triage managers only: give the alert to a worker."""
    return {"result": act(request, user, alert_id, "assign", to=body.to)}


class RatingBody(BaseModel):
    rag: str = Field(pattern="^(RED|AMBER|GREEN)$")
    rationale: str = Field(min_length=1, max_length=actions.MAX_RATIONALE, pattern=SAYS_SOMETHING)


@router.post("/alerts/{alert_id}/rating", tags=["actions"], response_model=Result,
             responses=refusals(*WITH_BODY))
def api_rerate(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId,
               body: RatingBody) -> dict[str, str]:
    """Change the rating, with the reason (the hub never lowers one; a person may, on the record)."""
    return {"result": act(request, user, alert_id, "rerate", rag=body.rag, rationale=body.rationale)}


@router.post("/alerts/{alert_id}/decision", tags=["actions"], response_model=Result,
             responses=refusals(*WITH_BODY))
def api_decide(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: AlertId,
               body: DecisionBody) -> dict[str, str]:
    """Record what happens next for the child, with the rationale; published to mash.decisions.v1."""
    return {"result": act(request, user, alert_id, "decision", outcome=body.outcome, rationale=body.rationale,
                          revision=body.alert_revision)}


class AnswerBody(BaseModel):
    answer: str = Field(pattern="^(CONFIRMED|REJECTED)$", description="CONFIRMED merges the two persons; "
                        "REJECTED keeps them apart")


@router.get("/matches", tags=["possible matches"], responses=refusals(401, 403))
def api_matches(request: Request, user: Annotated[User, Depends(api_caseworker)]) -> dict[str, Any]:
    """Possible matches held for a person to confirm or reject, oldest first."""
    with cfg(request).sessions() as session:
        return {"matches": [t.as_json() for t in open_tasks(session, user)]}


@router.post("/matches/{event_id}/answer", tags=["possible matches"], response_model=Result,
             responses=refusals(*WITH_BODY))
def api_answer(request: Request, user: Annotated[User, Depends(api_writer)], event_id: EventId,
               body: AnswerBody) -> dict[str, str]:
    return {"result": answer_match(request, user, event_id, body.answer == "CONFIRMED")}
