"""Password hashing with argon2id (RFC 9106's low-memory profile: 64 MiB, 3 passes, 4 lanes; about
80 ms here): memory-hard, salted, compared in constant time. Hashes from before (scrypt at
N=2^14) still verify, and `needs_rehash` says to replace them at the user's next log-in.

At most HASHING_AT_ONCE hashes run together, so a flood of log-ins costs time, not 64 MiB each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
HASHING_AT_ONCE = 4
_HASHER = PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
_SLOTS = threading.BoundedSemaphore(HASHING_AT_ONCE)


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    with _SLOTS:
        return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    with _SLOTS:
        if stored.startswith("scrypt$"):
            return _verify_scrypt(password, stored)
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False


def needs_rehash(stored: str) -> bool:
    """True for a hash weaker than today's: any scrypt one, or argon2 with older parameters."""
    if stored.startswith("scrypt$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """The hashes this app made before argon2id: `scrypt$N$r$p$salt$digest`."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def one_time_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters
