"""Who is asking, and may they: the app's configuration, session user, CSRF check, and the one
place where an action's failure becomes the HTTP status a client can act on."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from services.triage.clocks import Profile
from services.triage.scoring import Scoring
from services.triage_app import actions, matches
from services.triage_app.accounts import AUDITOR, User, authenticate, load_user
from services.triage_app.outbox import Outbox
from services.triage_app.queue import AlertPage, NotFound, alert_page


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppConfig:
    sessions: sessionmaker[Session]
    scoring: Scoring
    secret_key: str
    outbox: Outbox | None = None
    profile: Profile | None = None  # the RAG profile, for the deadline of a rating a person sets
    clock: Callable[[], datetime] = field(default=_utc_now)
    secure_cookies: bool = False  # True behind TLS in production
    refresh_seconds: int = 5


def cfg(request: Request) -> AppConfig:
    config: AppConfig = request.app.state.config
    return config


def session_user(request: Request) -> User | None:
    username = request.session.get("user")
    if not username:
        return None
    with cfg(request).sessions() as session:
        return load_user(session, username)  # every request: a deactivated account stops at once


def api_user(request: Request) -> User:
    user = session_user(request)
    if user is None:
        raise HTTPException(401, "log in first: POST /api/login")
    return user


NOT_FOR_AUDITORS = "an auditor reads the audit trail (/audit), not children's records or the triage queue"


def caseworker(user: User) -> User:
    """Children's records (queue, alerts, possible matches) are for triage staff: 403 for an auditor."""
    if user.role == AUDITOR:
        raise HTTPException(403, NOT_FOR_AUDITORS)
    return user


def api_caseworker(user: Annotated[User, Depends(api_user)]) -> User:
    return caseworker(user)


def api_writer(request: Request, user: Annotated[User, Depends(api_user)]) -> User:
    checked_csrf(request, request.headers.get("x-csrf-token"))
    return user


def csrf(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return str(request.session["csrf"])


def checked_csrf(request: Request, token: str | None) -> None:
    expected = request.session.get("csrf", "")
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def log_in(request: Request, username: str, password: str) -> User | None:
    config = cfg(request)
    with config.sessions.begin() as session:
        user = authenticate(session, username, password, config.clock())
    if user is None:
        metrics.LOGIN_FAILURES.inc()
    else:
        request.session.clear()  # a fresh session (and CSRF token) at every log-in
        request.session.update({"user": user.username, "csrf": secrets.token_urlsafe(32)})
    return user


def answer_match(request: Request, user: User, event_id: str, confirmed: bool) -> str:
    config = cfg(request)
    with http_errors("no such possible match"):
        matches.answer(config.sessions, user, event_id, confirmed, config.clock())
    sent = config.outbox.flush() if config.outbox else 0
    return ("confirmed: the hub will merge the two records" if confirmed else "rejected: they stay apart") + (
        "" if sent else "; it will reach the hub when Kafka is reachable")


def alert_for(request: Request, user: User, alert_id: str) -> AlertPage:
    """The alert as this user may see it, or 404 (also for one they may not see: no hint it exists)."""
    config = cfg(request)
    with config.sessions() as session:
        try:
            return alert_page(session, user, alert_id, config.scoring, config.clock())
        except NotFound:
            raise HTTPException(404, "no such alert on your queue") from None


@contextmanager
def http_errors(missing: str) -> Iterator[None]:
    """What went wrong in an action, as the status a client can act on."""
    try:
        yield
    except actions.Refused as exc:
        raise HTTPException(403, str(exc)) from None
    except actions.Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError:
        raise HTTPException(404, missing) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


def act(request: Request, user: User, alert_id: str, action: str, *, outcome: str = "", rationale: str = "",
        to: str = "", rag: str = "", revision: int | None = None) -> str:
    """Do an action; map what went wrong to the status a client can act on."""
    config = cfg(request)
    now = config.clock()
    doings: dict[str, Callable[[], str]] = {
        "claim": lambda: _done(lambda: actions.claim(config.sessions, user, alert_id, now), "claimed"),
        "unclaim": lambda: _done(lambda: actions.unclaim(config.sessions, user, alert_id, now), "released"),
        "assign": lambda: _done(lambda: actions.assign(config.sessions, user, alert_id, to, now), f"assigned to {to}"),
        "rerate": lambda: "rating changed to {} ({})".format(rag, actions.rerate(
            config.sessions, user, alert_id, rag, rationale, now, config.profile).audit_ref),
        "decision": lambda: _decision(config, user, alert_id, outcome, rationale, now, revision),
    }
    if action not in doings:
        raise HTTPException(404, f"unknown action {action!r}")
    with http_errors("no such alert on your queue"):
        return doings[action]()
    raise AssertionError("unreachable")  # http_errors re-raises every exception


def _done(action: Callable[[], None], message: str) -> str:
    action()
    return message


def _decision(config: AppConfig, user: User, alert_id: str, outcome: str, rationale: str, now: datetime,
              revision: int | None) -> str:
    decided = actions.decide(config.sessions, user, alert_id, outcome, rationale, now, revision)
    metrics.TRIAGE_DECISIONS.labels(outcome).inc()
    sent = config.outbox.flush() if config.outbox else 0
    later = "" if sent else "; it will reach the hub when Kafka is reachable"
    return f"decision recorded ({decided.audit_ref}){later}"
