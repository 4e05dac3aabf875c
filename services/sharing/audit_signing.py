"""Who wrote an audit entry: a keyed signature over its chain, sequence and hash. Pure.

The hash chain proves the trail was not edited after the fact, but anyone who may append (the
processes' database role) could append entries of their own, sealed correctly, and a verifier or
the sharing stage would take them as genuine. Each writer therefore signs what it seals with a key
from its environment (HMAC-SHA256); the signature names the key by an id, so keys can be rotated
and a verifier can hold several. An entry inserted without the key, a chain rewritten and rehashed,
or a record appended to the topic by someone else fails here.

Entries sealed before signing began carry no signature: the database records the last of them
(`audit_signing_began`), and on the topic they are the unsigned records before a partition's first
signed one. Any other unsigned entry is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

SCHEME = "hmac-sha256"
MIN_KEY_BYTES = 32


class WeakKey(ValueError):
    """The signing key is too short to resist guessing."""


def key_id(key: bytes) -> str:
    """A public name for a key: it tells which key signed, and reveals nothing of it."""
    return hashlib.sha256(b"mash-audit-key-id\x00" + key).hexdigest()[:12]


def _mac(key: bytes, chain: str, seq: int, entry_hash: str) -> str:
    message = f"mash-audit\x00{chain}\x00{seq}\x00{entry_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditKeys:
    """The key this process signs with, and every key it accepts (its own, and rotated or other
    writers' keys) by id."""

    signing: bytes
    accepted: dict[str, bytes]

    @classmethod
    def of(cls, signing: bytes, others: Iterable[bytes] = ()) -> AuditKeys:
        for key in (signing, *others):
            if len(key) < MIN_KEY_BYTES:
                raise WeakKey(f"an audit signing key must be at least {MIN_KEY_BYTES} bytes; make one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        return cls(signing, {key_id(key): key for key in (signing, *others)})

    @property
    def signing_id(self) -> str:
        return key_id(self.signing)

    def sign(self, chain: str, seq: int, entry_hash: str) -> str:
        return f"{SCHEME}:{self.signing_id}:{_mac(self.signing, chain, seq, entry_hash)}"

    def problem(self, chain: str, seq: int, entry_hash: str, signature: str | None, legacy: bool = False) -> str | None:
        """Why this entry cannot be taken as written by a key holder; None when it can. `legacy`: it was
        sealed before signing began, so having no signature is expected of it."""
        if signature is None:
            return None if legacy else "it is not signed: it was not written by a holder of an audit key"
        scheme, _, rest = signature.partition(":")
        kid, _, mac = rest.partition(":")
        if scheme != SCHEME or not kid or not mac:
            return "its signature is malformed: it was not written by a holder of an audit key"
        key = self.accepted.get(kid)
        if key is None:
            return (f"it is signed with key {kid[:12]}, which this verifier does not hold: add that key to "
                    "MASH_AUDIT_VERIFY_KEYS if it is a rotated or another writer's key, else it is forged")
        if not hmac.compare_digest(mac, _mac(key, chain, seq, entry_hash)):
            return "its signature does not match it: it was written or altered without the key"
        return None
