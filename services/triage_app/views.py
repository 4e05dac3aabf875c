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
    amended: str = ""  # what this revision changed from the one before, as the user sees both
    withdrawn_fields: tuple[tuple[str, str], ...] = ()  # (name, date): fields this role saw here, since withdrawn


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
                  views: Mapping[str, Sequence[str]], sharing_role: str | None,
                  withdrawn: Mapping[str, Mapping[str, str]] | None = None) -> VisibleEvent:
    """The role's view of one timeline row, and the names of fields it saw here before a later
    revision stopped sharing them (they saw them once: the name and date tell nothing new)."""
    allowed = views.get(sharing_role, ()) if sharing_role else ()
    shown = visible_values(values, allowed)
    flat = tuple(sorted((f"{section}.{key}", value) for section, keys in shown.items() for key, value in keys.items()))
    gone = tuple(sorted((withdrawn or {}).get(sharing_role or "", {}).items())) if sharing_role else ()
    withheld = not flat and not gone
    return VisibleEvent(event_id, None if withheld else event_type, agency, occurred_at, flat, withheld,
                        withdrawn_fields=gone)


AMENDMENT_VALUE_CHARS = 60


def amendment(agency: str, before: VisibleEvent, after: VisibleEvent) -> str:
    """What a revision changed, in the fields the user sees of both ("police amended: risk grading
    STANDARD -> HIGH"). Fields the user sees of neither say nothing, so a change cannot leak."""
    if before.withheld or after.withheld:
        return ""
    old, new = _from_agency(before), _from_agency(after)
    changes = [f"{_label(name)} {_short(old[name])} -> {_short(new[name])}"
               for name in sorted(old.keys() & new.keys()) if old[name] != new[name]]
    changes += [f"{_label(name)} added: {_short(new[name])}" for name in sorted(new.keys() - old.keys())]
    was = old.keys() | {name for name, _ in before.withdrawn_fields}
    now = new.keys() | {name for name, _ in after.withdrawn_fields}  # this revision shared it; a later one stopped
    changes += [f"{_label(name)} no longer shared" for name in sorted(was - now)]
    if not changes:
        return f"{agency.lower().replace('_', ' ')} sent a revision: nothing you can see changed"
    return f"{agency.lower().replace('_', ' ')} amended: " + "; ".join(changes)


AGENCY_SECTIONS = ("subject", "payload")  # what the agency sent; `link` and `context` the hub added


def _from_agency(seen: VisibleEvent) -> dict[str, Any]:
    """What the agency sent, not what the hub added (link method, prior contacts), which changes
    with every event and is not the agency's amendment."""
    return {name: value for name, value in seen.fields if name.partition(".")[0] in AGENCY_SECTIONS}


def _label(name: str) -> str:
    return name.partition(".")[2].replace("_", " ") or name


def _short(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= AMENDMENT_VALUE_CHARS else text[:AMENDMENT_VALUE_CHARS - 1] + "…"


def visible_reasons(scoring: Scoring, events: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> list[str]:
    """Reasons found from what the user can see: (event_type, agency, occurred_ms, visible values) each."""
    scored = [Scored(agency, ms, indicators_of(scoring, event_type or "", values))
              for event_type, agency, ms, values in events]
    return list(assess(scoring, scored).reasons)
