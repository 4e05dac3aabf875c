"""Failed log-ins in SQL, for the back-off rule (login_backoff.py): two keys per attempt, the
username from this address and this address for any username.

Each failure is counted by one INSERT ... ON CONFLICT DO UPDATE SET failures = failures + 1, so
concurrent failures are never lost to a read-modify-write; a wait is only ever lengthened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mash.models import LoginThrottleRecord
from services.triage_app.login_backoff import ANY_USER, PER_ADDRESS, PER_USER_AND_ADDRESS, blocked, rule_for

T = LoginThrottleRecord
MAX_ADDRESS = 64  # the column; an IPv6 address with a zone fits
FORGET_AFTER = max(PER_ADDRESS.window, PER_USER_AND_ADDRESS.window)


def held(session: Session, username: str, address: str, now: datetime) -> bool:
    """Must this attempt wait: the username from this address, or this address, is backing off."""
    address = address[:MAX_ADDRESS]
    until = session.scalars(select(T.blocked_until).where(T.address == address,
                                                          T.username.in_((username, ANY_USER))))
    return any(blocked(_aware(moment), now) for moment in until if moment is not None)


def failed(session: Session, username: str, address: str, now: datetime) -> None:
    """Count a failure against both keys and make each wait as its rule says; forget stale keys."""
    address = address[:MAX_ADDRESS]
    for name in (username, ANY_USER):
        wait = rule_for(name).wait_after(_count(session, name, address, now))
        if wait:
            until = now + wait
            session.execute(update(T).where(T.username == name, T.address == address,
                                            or_(T.blocked_until.is_(None), T.blocked_until < until))
                            .values(blocked_until=until))
    session.execute(delete(T).where(T.last_failure_at < now - FORGET_AFTER,
                                    or_(T.blocked_until.is_(None), T.blocked_until < now)))


def succeeded(session: Session, username: str, address: str) -> None:
    """The user got in from here: their key from this address starts again. The address's own key
    does not (an attacker with one account of their own could otherwise reset it between guesses)."""
    session.execute(delete(T).where(T.username == username, T.address == address[:MAX_ADDRESS]))


def _count(session: Session, username: str, address: str, now: datetime) -> int:
    """This key's failures in a row, this one included, in one atomic statement."""
    table = T.__table__
    insert: Any = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stale = table.c.last_failure_at < now - rule_for(username).window
    statement = insert(table).values(username=username, address=address, failures=1, last_failure_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.username, table.c.address],
        set_={"failures": case((stale, 1), else_=table.c.failures + 1), "last_failure_at": now},
    ).returning(table.c.failures)
    return int(session.execute(statement).scalar_one())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive times
