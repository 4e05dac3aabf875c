"""What an information request shows the agency it asks: who to search for, as the sharing policy
lets that agency's role see them, and nothing else of the child's records. Pure.

The sharing stage decided, event by event, which fields each role may see (`views`). A request to
an agency carries, for each subject, the identifying fields its role may see on some standing
event about that subject (the latest value of each), so the agency can find its own records. A
field no event lets the role see is not carried, and neither is anything the events say beyond
who the subject is: the agency is asked what it holds, not told what others hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

IDENTIFYING = ("subject.given_name", "subject.family_name", "subject.date_of_birth", "subject.sex",
               "subject.address_line", "subject.postcode", "subject.nhs_number", "subject.upn")
LABELS = {"subject.given_name": "Given name", "subject.family_name": "Family name",
          "subject.date_of_birth": "Date of birth", "subject.sex": "Sex", "subject.address_line": "Address",
          "subject.postcode": "Postcode", "subject.nhs_number": "NHS number", "subject.upn": "UPN"}


@dataclass(frozen=True)
class StandingEvent:
    """A timeline row still standing (not superseded by a later revision, not withdrawn)."""

    person_id: str
    occurred_at: datetime
    values: Mapping[str, Any]
    views: Mapping[str, Sequence[str]]


def identity_for(role: str, events: Iterable[StandingEvent]) -> dict[str, str]:
    """The subject's identifying fields the role may see, each from the latest event that shows it."""
    found: dict[str, tuple[datetime, str]] = {}
    for event in events:
        allowed = set(event.views.get(role, ()))
        subject = event.values.get("subject")
        if not isinstance(subject, Mapping):
            continue
        for name in IDENTIFYING:
            value = subject.get(name.partition(".")[2])
            shown = name in allowed and isinstance(value, str | int) and str(value).strip()
            if shown and (name not in found or event.occurred_at >= found[name][0]):
                found[name] = (event.occurred_at, str(value))
    return {name: found[name][1] for name in IDENTIFYING if name in found}


def identifies(identity: Mapping[str, str]) -> bool:
    """Enough to search on: a trusted identifier, or a name with a date of birth."""
    if identity.get("subject.nhs_number") or identity.get("subject.upn"):
        return True
    named = identity.get("subject.given_name") or identity.get("subject.family_name")
    return bool(named and identity.get("subject.date_of_birth"))
