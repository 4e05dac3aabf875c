"""The JSON API: the same actions as the pages, for other systems and scripts (OpenAPI at
/api/openapi.json). Log in with POST /api/login; send its csrf_token as X-CSRF-Token on writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from services.triage_app import actions
from services.triage_app.accounts import User
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

router = APIRouter(prefix="/api")


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class AssignBody(BaseModel):
    to: str = Field(max_length=64, description="username of a triage worker or manager")


class DecisionBody(BaseModel):
    outcome: str = Field(description="one of " + ", ".join(actions.OUTCOMES))
    rationale: str = Field(min_length=1, max_length=actions.MAX_RATIONALE)
    alert_revision: int = Field(ge=1, description="the alert's `revision` as you read it: if the hub has revised "
                                "the alert since, the answer is 409 and says what changed")


@router.post("/login", tags=["session"])
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


@router.post("/logout", tags=["session"])
def api_logout(request: Request, response: Response, _: Annotated[User, Depends(api_writer)]) -> dict[str, str]:
    """End this session on the server: the cookie, wherever it was copied, logs no one in after."""
    log_out(request, response)
    return {"result": "logged out"}


@router.get("/alerts", tags=["queue"])
def api_queue(request: Request, user: Annotated[User, Depends(api_caseworker)], limit: int = 100) -> dict[str, Any]:
    """Open alerts you may work, most urgent first: by rating, then by time left. An alert's `score`
    is null when it may rest on information withheld from your role (its rating is always shown)."""
    config = cfg(request)
    with config.sessions() as session:
        found = queue(session, user, config.scoring, config.clock(), limit=max(1, min(limit, 500)))
    return {"total": found.total, "at_risk": found.at_risk, "breached": found.breached,
            "alerts": [r.as_json() for r in found.rows]}


@router.get("/alerts/{alert_id}", tags=["queue"])
def api_alert(request: Request, user: Annotated[User, Depends(api_caseworker)], alert_id: str) -> dict[str, Any]:
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


@router.post("/alerts/{alert_id}/claim", tags=["actions"])
def api_claim(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: str) -> dict[str, str]:
    return {"result": act(request, user, alert_id, "claim")}


@router.post("/alerts/{alert_id}/unclaim", tags=["actions"])
def api_unclaim(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: str) -> dict[str, str]:
    return {"result": act(request, user, alert_id, "unclaim")}


@router.post("/alerts/{alert_id}/assign", tags=["actions"])
def api_assign(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: str,
               body: AssignBody) -> dict[str, str]:
    """Triage managers only: give the alert to a worker."""
    return {"result": act(request, user, alert_id, "assign", to=body.to)}


class RatingBody(BaseModel):
    rag: str = Field(pattern="^(RED|AMBER|GREEN)$")
    rationale: str = Field(min_length=1, max_length=actions.MAX_RATIONALE)


@router.post("/alerts/{alert_id}/rating", tags=["actions"])
def api_rerate(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: str,
               body: RatingBody) -> dict[str, str]:
    """Change the rating, with the reason (the hub never lowers one; a person may, on the record)."""
    return {"result": act(request, user, alert_id, "rerate", rag=body.rag, rationale=body.rationale)}


@router.post("/alerts/{alert_id}/decision", tags=["actions"])
def api_decide(request: Request, user: Annotated[User, Depends(api_writer)], alert_id: str,
               body: DecisionBody) -> dict[str, str]:
    """Record what happens next for the child, with the rationale; published to mash.decisions.v1."""
    return {"result": act(request, user, alert_id, "decision", outcome=body.outcome, rationale=body.rationale,
                          revision=body.alert_revision)}


class AnswerBody(BaseModel):
    answer: str = Field(pattern="^(CONFIRMED|REJECTED)$", description="CONFIRMED merges the two persons; "
                        "REJECTED keeps them apart")


@router.get("/matches", tags=["possible matches"])
def api_matches(request: Request, user: Annotated[User, Depends(api_caseworker)]) -> dict[str, Any]:
    """Possible matches held for a person to confirm or reject, oldest first."""
    with cfg(request).sessions() as session:
        return {"matches": [t.as_json() for t in open_tasks(session, user)]}


@router.post("/matches/{event_id}/answer", tags=["possible matches"])
def api_answer(request: Request, user: Annotated[User, Depends(api_writer)], event_id: str,
               body: AnswerBody) -> dict[str, str]:
    return {"result": answer_match(request, user, event_id, body.answer == "CONFIRMED")}
