"""Who is asking, and may they: the app's configuration, session user (server-side sessions:
session_store.py), CSRF check, and the one place where an action's failure becomes the HTTP status
a client can act on.

Before log-in there is no session: the log-in form's CSRF token is an HMAC, under the app's secret
key, of a random value in a cookie of its own (`mash_login`), so a cross-site page can neither
read nor forge it. After log-in the token is the session's own, kept with it on the server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, Response
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.settings import get_settings
from services.enquiry.catalogue import Catalogue, load_catalogue
from services.sharing.policy import Policy
from services.sharing.policy_source import PolicySource
from services.triage.clocks import Profile
from services.triage.scoring import Scoring
from services.triage_app import actions, matches, session_store
from services.triage_app.accounts import AGENCY, AUDITOR, User, authenticate, load_user
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
    timeouts: session_store.Timeouts = field(default_factory=session_store.Timeouts)
    api_docs: bool = True  # /api/docs (Swagger UI, served from the app itself)
    catalogue: Catalogue = field(default_factory=load_catalogue)  # the agencies an enquiry asks, and its outcomes
    request_profile: Profile | None = None  # the information requests' clocks (default: `profile`'s)
    policy: Callable[[], Policy] = field(default_factory=lambda: PolicySource(
        get_settings().sharing_policy).current)  # decides who reads each agency's answer to a request

    def requests_clock(self) -> Profile:
        found = self.request_profile or self.profile
        if found is None:
            raise HTTPException(503, "no RAG profile is configured for request deadlines: set MASH_TRIAGE_PROFILE")
        return found


LOGIN_COOKIE = "mash_login"


def cfg(request: Request) -> AppConfig:
    config: AppConfig = request.app.state.config
    return config


def web_session(request: Request, touch: bool = True, extend: bool = False) -> session_store.WebSession | None:
    """The request's live session, if any (looked up once per request)."""
    if not hasattr(request.state, "web_session"):
        config = cfg(request)
        request.state.web_session = session_store.find(config.sessions, request.cookies.get(session_store.COOKIE),
                                                       config.clock(), config.timeouts, touch, extend)
    found: session_store.WebSession | None = request.state.web_session
    return found


def seconds_left(request: Request) -> int | None:
    """How long the request's session has before it ends unless used, for the page's warning."""
    found = web_session(request)
    if found is None:
        return None
    return max(0, int((found.expires_at - cfg(request).clock()).total_seconds()))


def session_user(request: Request, touch: bool = True) -> User | None:
    """The logged-in user; `touch=False` for what a page fetches by itself (the queue's refresh), so
    an unattended screen still idles out."""
    found = web_session(request, touch)
    if found is None:
        return None
    with cfg(request).sessions() as session:
        return load_user(session, found.username)  # every request: a deactivated account stops at once


def api_user(request: Request) -> User:
    user = session_user(request)
    if user is None:
        raise HTTPException(401, "log in first: POST /api/login")
    return user


NOT_FOR_AUDITORS = "an auditor reads the audit trail (/audit), not children's records or the triage queue"
NOT_FOR_AGENCIES = ("a partner agency account answers its agency's information requests (/portal), and sees "
                    "no alert or child's record")


def caseworker(user: User) -> User:
    """Children's records (queue, alerts, possible matches) are for triage staff: 403 for an auditor
    and for a partner agency's user."""
    if user.role == AUDITOR:
        raise HTTPException(403, NOT_FOR_AUDITORS)
    if user.role == AGENCY:
        raise HTTPException(403, NOT_FOR_AGENCIES)
    return user


def api_caseworker(user: Annotated[User, Depends(api_user)]) -> User:
    return caseworker(user)


def api_writer(request: Request, user: Annotated[User, Depends(api_user)],
               x_csrf_token: Annotated[str | None, Header(
                   alias="X-CSRF-Token", description="the csrf_token POST /api/login returned for this session")
               ] = None) -> User:
    checked_csrf(request, x_csrf_token)
    return user


def csrf(request: Request) -> str:
    """The token a form must send back: the session's, or before log-in the log-in form's."""
    found = web_session(request)
    return found.csrf_token if found is not None else login_csrf(request)


def login_csrf(request: Request) -> str:
    """The log-in form's token, from this browser's `mash_login` cookie (made if it has none; set on
    the response by `set_cookies`)."""
    nonce = request.cookies.get(LOGIN_COOKIE) or getattr(request.state, "new_login_nonce", None)
    if not nonce:
        nonce = request.state.new_login_nonce = secrets.token_urlsafe(32)
    return hmac.new(cfg(request).secret_key.encode(), b"login:" + nonce.encode(), hashlib.sha256).hexdigest()


def checked_csrf(request: Request, token: str | None) -> None:
    found = web_session(request)
    _same_token(found.csrf_token if found is not None else "", token)


def checked_login_csrf(request: Request, token: str | None) -> None:
    _same_token(login_csrf(request) if request.cookies.get(LOGIN_COOKIE) else "", token)


def _same_token(expected: str, token: str | None) -> None:
    # compared as bytes: compare_digest refuses a str with anything but ASCII (a TypeError, a 500)
    if not expected or not token or not hmac.compare_digest(expected.encode(), token.encode(errors="surrogatepass")):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def set_cookies(request: Request, response: Response) -> None:
    """Give the browser what this request made: a log-in form's cookie, or a new session's."""
    config = cfg(request)
    nonce = getattr(request.state, "new_login_nonce", None)
    if nonce:
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="strict", secure=config.secure_cookies)
    token = getattr(request.state, "new_session_token", None)
    if token:
        response.set_cookie(session_store.COOKIE, token, max_age=int(config.timeouts.absolute.total_seconds()),
                            httponly=True, samesite="strict", secure=config.secure_cookies)


def log_in(request: Request, username: str, password: str) -> tuple[User, str] | None:
    """The user and their new session's CSRF token, or None. Whatever session the request carried
    ends: a fresh one (and token) at every log-in. The caller sets the cookie (`set_cookies`)."""
    config = cfg(request)
    now = config.clock()
    address = request.client.host if request.client else "unknown"  # a trusted proxy's client: runtime.py
    user = authenticate(config.sessions, username, password, address, now)
    if user is None:
        metrics.LOGIN_FAILURES.inc()
        return None
    old = request.cookies.get(session_store.COOKIE)
    with config.sessions.begin() as session:
        if old:
            session_store.end(session, old)
        token = session_store.start(session, user.username, now, config.timeouts)
    request.state.new_session_token = token
    found = request.state.web_session = session_store.find(config.sessions, token, now, config.timeouts)
    if found is None:  # only a timeout configured as nothing could do this
        raise HTTPException(500, "the new session ended at once: check MASH_TRIAGE_SESSION_* settings")
    return user, found.csrf_token


def log_out(request: Request, response: Response) -> None:
    """This session ends on the server (a copy of the cookie is worth nothing after) and in the browser."""
    token = request.cookies.get(session_store.COOKIE)
    if token:
        with cfg(request).sessions.begin() as session:
            session_store.end(session, token)
    response.delete_cookie(session_store.COOKIE, httponly=True, samesite="strict", secure=cfg(request).secure_cookies)


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
