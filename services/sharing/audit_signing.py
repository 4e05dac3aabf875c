"""Who wrote an audit entry: a keyed signature over its chain, sequence and hash. Pure.

The hash chain proves the trail was not edited after the fact, but anyone who may append (the
processes' database role) could append entries of their own, sealed correctly, and a verifier or
the sharing stage would take them as genuine. Each writer therefore signs what it seals with a key
from its environment (HMAC-SHA256); the signature names the key by an id, so keys can be rotated
and a verifier can hold several. An entry inserted without the key, a chain rewritten and rehashed,
or a record appended to the topic by someone else fails here.

Keys belong to writers: the hub signs the sharing chains (`p<N>`), the triage app its own chain
(`triage-app`). A further key may be named for one writer (`triage-app:<key>`) and then signs no
other writer's chain; a writer itself trusts only its own keys (`for_writer`), so the app's key can
never pass for the hub's, whatever a verifier holds.

Entries sealed before signing began carry no signature: the database records each chain's last
sequence number then (`audit_signing_began`). Any other unsigned entry is refused.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SCHEME = "hmac-sha256"
MIN_KEY_BYTES = 32
WRITERS = ("hub", "triage-app")
APP_CHAIN = "triage-app"


def writer_of(chain: str) -> str:
    """Who may write a chain: the triage app its own, the hub's sharing stage every other."""
    return "triage-app" if chain == APP_CHAIN else "hub"


class WeakKey(ValueError):
    """The signing key is too short to resist guessing."""


def key_id(key: bytes) -> str:
    """A public name for a key: it tells which key signed, and reveals nothing of it."""
    return hashlib.sha256(b"mash-audit-key-id\x00" + key).hexdigest()[:12]


def _mac(key: bytes, chain: str, seq: int, entry_hash: str) -> str:
    message = f"mash-audit\x00{chain}\x00{seq}\x00{entry_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def keyed_mac(key: bytes, *parts: str) -> str:
    """A keyed BLAKE2b (a MAC in its own right) under a subkey kept apart from entry signatures; 128 bits."""
    mac = _keyed(key).copy()
    mac.update("\x00".join(parts).encode())
    return str(mac.hexdigest())


def keyed_macs(key: bytes, prefix: Sequence[str], items: Iterable[tuple[str, str]]) -> list[str]:
    """`keyed_mac(key, *prefix, name, text)` for each (name, text), the prefix hashed once: the sharing
    stage makes one per released value of every event."""
    start = _keyed(key).copy()
    start.update(("\x00".join(prefix) + "\x00").encode())
    out = []
    for name, text in items:
        mac = start.copy()
        mac.update(f"{name}\x00{text}".encode())
        out.append(mac.hexdigest())
    return out


@functools.lru_cache(maxsize=16)
def _keyed(key: bytes) -> Any:
    return hashlib.blake2b(key=hashlib.sha256(b"mash-audit-shown\x00" + key).digest(), digest_size=16)


@dataclass(frozen=True)
class AuditKeys:
    """The key this process signs with, and every key it accepts by id, each for one writer's chains
    (or, unnamed, any chain: the embedded stack's single key)."""

    signing: bytes
    accepted: dict[str, tuple[bytes, str | None]]

    @classmethod
    def of(cls, signing: bytes, others: Iterable[bytes | tuple[str, bytes]] = ()) -> AuditKeys:
        named = [other if isinstance(other, tuple) else (None, other) for other in others]
        for _, key in ((None, signing), *named):
            if len(key) < MIN_KEY_BYTES:
                raise WeakKey(f"an audit signing key must be at least {MIN_KEY_BYTES} bytes; make one with "
                              "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        accepted: dict[str, tuple[bytes, str | None]] = {key_id(key): (key, writer) for writer, key in named}
        accepted[key_id(signing)] = (signing, None)
        return cls(signing, accepted)

    def for_writer(self, writer: str) -> AuditKeys:
        """What a writer trusts of entries found on its own chains: its signing key and keys named for
        it (rotated out), never another writer's nor an unnamed verifier's key."""
        return AuditKeys(self.signing, {kid: (key, scope) for kid, (key, scope) in self.accepted.items()
                                        if key == self.signing or scope == writer})

    @property
    def signing_id(self) -> str:
        return key_id(self.signing)

    def sign(self, chain: str, seq: int, entry_hash: str) -> str:
        return f"{SCHEME}:{self.signing_id}:{_mac(self.signing, chain, seq, entry_hash)}"

    def mac(self, *parts: str) -> str:
        """A keyed digest of what a page shows (a value, an alert's columns), for an entry's body: it
        binds the stored copy to what was sealed, and reveals nothing of it to those who read the trail
        (a plain digest of a rating or a flag could be guessed by trying the few values it can take)."""
        return keyed_mac(self.signing, *parts)

    def macs(self, prefix: Sequence[str], items: Iterable[tuple[str, str]]) -> list[str]:
        return keyed_macs(self.signing, prefix, items)

    def key_of(self, signature: str | None) -> bytes | None:
        """The held key that made a signature (to check the keyed digests in the entry it signs)."""
        kid = (signature or "").split(":")[1:2]
        held = self.accepted.get(kid[0]) if kid else None
        return held[0] if held else None

    def problem(self, chain: str, seq: int, entry_hash: str, signature: str | None, legacy: bool = False) -> str | None:
        """Why this entry cannot be taken as written by its chain's writer; None when it can. `legacy`:
        it was sealed before signing began, so having no signature is expected of it."""
        if signature is None:
            return None if legacy else "it is not signed: it was not written by a holder of an audit key"
        scheme, _, rest = signature.partition(":")
        kid, _, mac = rest.partition(":")
        if scheme != SCHEME or not kid or not mac:
            return "its signature is malformed: it was not written by a holder of an audit key"
        held = self.accepted.get(kid)
        if held is None:
            return (f"it is signed with key {kid[:12]}, which this verifier does not hold: add that key to "
                    "MASH_AUDIT_VERIFY_KEYS if it is a rotated or another writer's key, else it is forged")
        key, scope = held
        if scope is not None and scope != writer_of(chain):
            return f"it is signed with a key of the {scope}, which does not write chain {chain}: it is forged"
        if not hmac.compare_digest(mac, _mac(key, chain, seq, entry_hash)):
            return "its signature does not match it: it was written or altered without the key"
        return None
