"""Server-side sessions of the triage app: the cookie carries a random id, the database the SHA-256 of
it with the user, the session's CSRF token and when it started and was last used.

A signed cookie re-signed on every response never expired (the queue polls every few seconds) and
could not be revoked; here a session ends when idle too long, when too old whatever it does, at
log-out, and for every session of a user whose password changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.orm import Session, sessionmaker

from mash.models import WebSessionRecord

COOKIE = "mash_session"
TOUCH_EVERY = timedelta(minutes=1)  # last use is written at most this often: no write per request
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True)
class WebSession:
    username: str
    csrf_token: str
    expires_at: datetime  # when it ends unless used again: the page warns before it (WCAG 2.2.1)


def expired(created_at: datetime, last_seen_at: datetime, now: datetime, timeouts: Timeouts) -> bool:
    return now - last_seen_at >= timeouts.idle or now - created_at >= timeouts.absolute


def start(session: Session, username: str, now: datetime, timeouts: Timeouts) -> str:
    """A new session for `username`; the cookie's value (never stored). Sweeps out expired ones."""
    token = secrets.token_urlsafe(32)
    session.add(WebSessionRecord(id_hash=_digest(token), username=username, csrf_token=secrets.token_urlsafe(32),
                                 created_at=now, last_seen_at=now))
    session.execute(delete(WebSessionRecord).where(or_(WebSessionRecord.last_seen_at <= now - timeouts.idle,
                                                       WebSessionRecord.created_at <= now - timeouts.absolute)))
    return token


def find(sessions: sessionmaker[Session], token: str | None, now: datetime, timeouts: Timeouts,
         touch: bool = True, extend: bool = False) -> WebSession | None:
    """The live session this cookie names, or None. `touch` records a use (keeps it from idling out):
    false for what the page fetches by itself, which is no sign that anyone is there. `extend`
    records it now, however recently the last was (the user asked to stay logged in)."""
    if not token or not _TOKEN.match(token):
        return None
    with sessions.begin() as session:
        row = session.get(WebSessionRecord, _digest(token))
        if row is None:
            return None
        if expired(_aware(row.created_at), _aware(row.last_seen_at), now, timeouts):
            session.delete(row)
            return None
        if extend or (touch and now - _aware(row.last_seen_at) >= TOUCH_EVERY):
            row.last_seen_at = now
        ends = min(_aware(row.last_seen_at) + timeouts.idle, _aware(row.created_at) + timeouts.absolute)
        return WebSession(row.username, row.csrf_token, ends)


def end(session: Session, token: str) -> None:
    session.execute(delete(WebSessionRecord).where(WebSessionRecord.id_hash == _digest(token)))


def end_all(session: Session, username: str) -> None:
    """Every session of the user, wherever it was copied to (a password change)."""
    session.execute(delete(WebSessionRecord).where(WebSessionRecord.username == username))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive times
