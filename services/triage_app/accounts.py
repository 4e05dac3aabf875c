"""Triage app accounts: roles, creation, password changes, and log-in with back-off after repeated
failures (per username from one address, and per address: login_backoff.py)."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from mash.models import UserRecord
from services.triage_app import login_throttle, session_store
from services.triage_app.passwords import WeakPassword, hash_password, needs_rehash, verify_password

# What each app role may do. The sharing role (whose view of an event the user sees) is separate.
WORKER, MANAGER, AUDITOR, AGENCY = "triage_worker", "triage_manager", "auditor", "agency_user"
APP_ROLES = {WORKER: "triage worker", MANAGER: "triage manager", AUDITOR: "auditor (read-only)",
             AGENCY: "partner agency user (the portal: their agency's information requests only)"}
# The MASH professionals a triage user can be, as the sharing policy names them.
SHARING_ROLES = ("mash_social_worker", "mash_police_officer", "mash_health_practitioner", "triage_manager")
# Verified against when there is no usable account, so an unknown name, a deactivated account and one
# held back by back-off cost as long as a wrong password: the answer's timing tells a guesser nothing.
_DUMMY_HASH = hash_password("not-a-real-password-at-all")


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    sharing_role: str | None
    agency: str | None = None  # an agency user's agency: they see its requests in the portal, nothing else

    @property
    def can_act(self) -> bool:
        return self.role in (WORKER, MANAGER)

    @property
    def sees_all(self) -> bool:
        return self.role in (MANAGER, AUDITOR)


def create_user(session: Session, username: str, display_name: str, role: str, sharing_role: str | None,
                password: str, now: datetime, agency: str | None = None,
                agencies: Collection[str] = ()) -> User:
    """A new account. An agency user names their agency (one of `agencies`, the enquiry catalogue's)
    and no sharing role: what they see is what each request to their agency shares."""
    if role not in APP_ROLES:
        raise AccountError(f"unknown role {role!r}; choose from {', '.join(APP_ROLES)}")
    if (role == AGENCY) != bool(agency):
        raise AccountError("a partner agency user names their agency (--agency), and only they do")
    if role == AGENCY and agency not in agencies:
        raise AccountError(f"unknown agency {agency!r}; choose from {', '.join(agencies)}")
    if role in (AUDITOR, AGENCY):
        sharing_role = None  # an auditor reads the audit trail, an agency user its requests: no children's records
    elif sharing_role not in SHARING_ROLES:
        raise AccountError(f"a {APP_ROLES[role]} needs a sharing role: one of {', '.join(SHARING_ROLES)}")
    if not username.isascii() or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AccountError("a username is letters, digits, '.', '-' and '_'")
    if session.get(UserRecord, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    session.add(UserRecord(username=username, display_name=display_name, role=role, sharing_role=sharing_role,
                           agency=agency, password_hash=hash_password(password), failed_logins=0, active=True,
                           created_at=now))
    return User(username, display_name, role, sharing_role, agency)


def authenticate(sessions: sessionmaker[Session], username: str, password: str, address: str,
                 now: datetime) -> User | None:
    """The user, or None for every failure alike: no such user, deactivated, wrong password, or this
    username or address backing off. The password is hashed every time (also when the answer is
    already no), and an attempt while held counts as a failure even with the right password: else
    whether the wait grew would say whether the guess was right. A hash weaker than today's is
    replaced on success. The hash runs outside any transaction: no connection is held for it."""
    with sessions() as session:
        row = session.get(UserRecord, username)
        stored = row.password_hash if row is not None and row.active else None
        held = login_throttle.held(session, username, address, now)
    right = verify_password(password, stored or _DUMMY_HASH)
    if stored is None or held or not right:
        with sessions.begin() as session:
            login_throttle.failed(session, username, address, now)
            if stored is not None:  # one statement: concurrent failures are all counted
                session.execute(update(UserRecord).where(UserRecord.username == username)
                                .values(failed_logins=UserRecord.failed_logins + 1))
        return None
    values: dict[str, object] = {"failed_logins": 0}
    if needs_rehash(stored):
        with suppress(WeakPassword):  # too short for today's rule: kept until the user sets a longer one
            values["password_hash"] = hash_password(password)
    with sessions.begin() as session:
        login_throttle.succeeded(session, username, address)
        changed = session.execute(update(UserRecord).where(  # not if the password changed meanwhile
            UserRecord.username == username, UserRecord.password_hash == stored, UserRecord.active.is_(True))
            .values(**values)).rowcount  # type: ignore[attr-defined]
        row = session.get(UserRecord, username) if changed else None
        return to_user(row) if row is not None else None


def set_password(session: Session, username: str, password: str) -> None:
    """A new password; every session the user has open ends (a copied cookie included)."""
    new_hash = hash_password(password)
    row = session.get(UserRecord, username)
    if row is None:
        raise AccountError(f"no user {username!r}")
    row.password_hash, row.failed_logins = new_hash, 0
    session_store.end_all(session, username)


def load_user(session: Session, username: str) -> User | None:
    row = session.get(UserRecord, username)
    return to_user(row) if row is not None and row.active else None


def to_user(row: UserRecord) -> User:
    return User(row.username, row.display_name, row.role, row.sharing_role, row.agency)
