"""Triage app accounts: roles, creation, and log-in with lock-out after repeated failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from mash.models import UserRecord
from services.triage_app.passwords import hash_password, verify_password

# What each app role may do. The sharing role (whose view of an event the user sees) is separate.
WORKER, MANAGER, AUDITOR = "triage_worker", "triage_manager", "auditor"
APP_ROLES = {WORKER: "triage worker", MANAGER: "triage manager", AUDITOR: "auditor (read-only)"}
# The MASH professionals a triage user can be, as the sharing policy names them.
SHARING_ROLES = ("mash_social_worker", "mash_police_officer", "mash_health_practitioner", "triage_manager")
MAX_FAILURES = 5
LOCK_FOR = timedelta(minutes=15)
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password("not-a-real-password-at-all")


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    username: str
    display_name: str
    role: str
    sharing_role: str | None

    @property
    def can_act(self) -> bool:
        return self.role in (WORKER, MANAGER)

    @property
    def sees_all(self) -> bool:
        return self.role in (MANAGER, AUDITOR)


def create_user(session: Session, username: str, display_name: str, role: str, sharing_role: str | None,
                password: str, now: datetime) -> User:
    if role not in APP_ROLES:
        raise AccountError(f"unknown role {role!r}; choose from {', '.join(APP_ROLES)}")
    if role == AUDITOR:
        sharing_role = None  # an auditor reads the audit trail, not children's records
    elif sharing_role not in SHARING_ROLES:
        raise AccountError(f"a {APP_ROLES[role]} needs a sharing role: one of {', '.join(SHARING_ROLES)}")
    if not username.isascii() or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AccountError("a username is letters, digits, '.', '-' and '_'")
    if session.get(UserRecord, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    session.add(UserRecord(username=username, display_name=display_name, role=role, sharing_role=sharing_role,
                           password_hash=hash_password(password), failed_logins=0, active=True, created_at=now))
    return User(username, display_name, role, sharing_role)


def authenticate(session: Session, username: str, password: str, now: datetime) -> User | None:
    """The user, or None; after MAX_FAILURES wrong passwords the account is locked for LOCK_FOR.
    The caller says the same thing for every failure, so a guesser learns nothing about accounts."""
    row = session.get(UserRecord, username)
    if row is None or not row.active:
        verify_password(password, _DUMMY_HASH)
        return None
    if row.locked_until is not None and _aware(row.locked_until) > now:
        return None
    if not verify_password(password, row.password_hash):
        row.failed_logins += 1
        if row.failed_logins >= MAX_FAILURES:
            row.locked_until, row.failed_logins = now + LOCK_FOR, 0
        return None
    row.failed_logins, row.locked_until = 0, None
    return to_user(row)


def load_user(session: Session, username: str) -> User | None:
    row = session.get(UserRecord, username)
    return to_user(row) if row is not None and row.active else None


def to_user(row: UserRecord) -> User:
    return User(row.username, row.display_name, row.role, row.sharing_role)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive times
