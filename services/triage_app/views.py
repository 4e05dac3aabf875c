"""What a user may see of an event: their role's view and nothing else. Pure.

The shared event's `values` holds every field some role may see; its `views` name, per role, the
fields that role may see. A user sees the fields of their sharing role's view; an auditor, who
reads the audit trail rather than children's records, sees none. Reasons for a rating are
shown only when they rest on fields the user can see (or on no field at all, like "two agencies
within 7 days"), so a reason cannot reveal a withheld field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.triage.scoring import Scored, Scoring, assess, indicators_of


@dataclass(frozen=True)
class VisibleEvent:
    event_id: str
    event_type: str | None  # None when the whole event is withheld from the role
    agency: str
    occurred_at: Any
    fields: tuple[tuple[str, Any], ...]  # (dotted name, value), in name order
    withheld: bool
    note: str = ""  # a revision's standing: amended by a later one, or withdrawn by its agency


def visible_values(values: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The nested values restricted to `allowed` dotted names."""
    out: dict[str, dict[str, Any]] = {}
    for name in allowed:
        section, _, key = name.partition(".")
        found = values.get(section)
        if isinstance(found, Mapping) and key in found:
            out.setdefault(section, {})[key] = found[key]
    return out


def visible_event(event_id: str, event_type: str, agency: str, occurred_at: Any, values: Mapping[str, Any],
                  views: Mapping[str, Sequence[str]], sharing_role: str | None) -> VisibleEvent:
    allowed = views.get(sharing_role, ()) if sharing_role else ()
    shown = visible_values(values, allowed)
    flat = tuple(sorted((f"{section}.{key}", value) for section, keys in shown.items() for key, value in keys.items()))
    withheld = not flat
    return VisibleEvent(event_id, None if withheld else event_type, agency, occurred_at, flat, withheld)


def visible_reasons(scoring: Scoring, events: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> list[str]:
    """Reasons found from what the user can see: (event_type, agency, occurred_ms, visible values) each."""
    scored = [Scored(agency, ms, indicators_of(scoring, event_type or "", values))
              for event_type, agency, ms, values in events]
    return list(assess(scoring, scored).reasons)
