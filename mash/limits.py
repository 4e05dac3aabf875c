"""How long each text field of an event may be, declared once.

Enforced at the edge (a connector refuses the record, naming the field), again at the hub
(enrichment dead-letters an inbound event over a limit, whoever produced it), and the person
index's columns are sized to them: one over-long name is one dead letter, on SQLite (which does
not enforce lengths) and PostgreSQL (which refuses the insert) alike, never a stalled stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TEXT_CHARS = 10_000  # free text (a summary, a detail): larger is a broken or hostile record
SUBJECT_CHARS: Mapping[str, int] = {  # the child's details, as the envelope carries them
    "local_id": 64,  # an agency's own id: person_identifiers.value holds "<AGENCY>:" + this
    "nhs_number": 32,  # kept even when invalid (marked so): room for a mistyped one
    "upn": 32,
    "given_name": 64,  # person_profiles.given / person_block_keys.given
    "family_name": 64,
    "address_line": 160,  # person_addresses.address_key: letters and digits of it, and the postcode
    "postcode": 16,
}
ENVELOPE_CHARS: Mapping[str, int] = {  # the envelope's own free-form strings
    "source_record_id": 128,
    "revision": 48,  # timeline_events.revision; the SDK's is "sha256:" and 32 hex digits
    "event_type": 64,  # timeline_events.event_type
    "event_id": 36,  # a UUID in its text form: the hub's keys are String(36)
    "record_id": 36,
}


@dataclass(frozen=True)
class OverLimit:
    field: str  # the envelope's name for it, e.g. "given_name"
    length: int
    limit: int
    section: str = "subject"
    problem: str = ""  # other than its length

    def __str__(self) -> str:
        if self.problem:
            return f"{self.section}.{self.field} {self.problem}"
        return f"{self.section}.{self.field} is {self.length} characters; the limit is {self.limit}"


def over_limit(subject: Mapping[str, Any]) -> OverLimit | None:
    """The first subject field longer than its limit; None when all fit."""
    return _first_over(subject, SUBJECT_CHARS, "subject")


def envelope_over_limit(envelope: Mapping[str, Any]) -> OverLimit | None:
    """The first field of an inbound envelope (its subject included) longer than its limit, or
    holding a NUL character (PostgreSQL text cannot hold one)."""
    subject = envelope.get("subject") or {}
    return (_first_over(envelope, ENVELOPE_CHARS, "envelope") or over_limit(subject)
            or _first_nul(envelope, "envelope") or _first_nul(subject, "subject"))


def _first_nul(fields: Mapping[str, Any], section: str) -> OverLimit | None:
    for name, value in fields.items():
        if isinstance(value, str) and "\x00" in value:
            return OverLimit(name, len(value), 0, section, "holds a NUL character")
    return None


def _first_over(fields: Mapping[str, Any], limits: Mapping[str, int], section: str) -> OverLimit | None:
    for name, limit in limits.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > limit:
            return OverLimit(name, len(value), limit, section)
    return None
