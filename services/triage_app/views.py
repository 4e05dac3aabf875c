"""What a user may see of an event: their role's view and nothing else. Pure.

The shared event's `values` holds every field some role may see; its `views` name, per role, the
fields that role may see. A user sees the fields of their sharing role's view; an auditor, who
reads the audit trail rather than children's records, sees none. Reasons for a rating are
shown only when they rest on fields the user can see (or on no field at all, like "two agencies
within 7 days"), so a reason cannot reveal a withheld field; the score is shown only when it rests
on nothing withheld (`score_seen`); free text people write is read by its author's sharing role
and triage managers (`may_read_rationale`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.triage.scoring import EventIndicator, Scored, Scoring, assess, indicators_of
from services.triage_app.accounts import MANAGER


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
    scored = [Scored(agency, ms, indicators_of(scoring, event_type or "", values, ms))
              for event_type, agency, ms, values in events]
    return list(assess(scoring, scored).reasons)


@dataclass(frozen=True)
class SeenEvent:
    """One of an alert's standing events as a role sees it, for `score_seen`."""

    event_type: str
    agency: str
    occurred_ms: int
    values: Mapping[str, Any]  # the role's view of the values (visible_values)
    hidden: frozenset[str]  # dotted names of the fields the event holds that the role may not see


def seen_event(event_type: str, agency: str, occurred_ms: int, values: Mapping[str, Any],
               allowed: Sequence[str]) -> SeenEvent:
    """The role's view of an event's values, and the names of the fields it holds beyond that view."""
    held = {f"{section}.{key}" for section, keys in values.items() if isinstance(keys, Mapping) for key in keys}
    return SeenEvent(event_type, agency, occurred_ms, visible_values(values, allowed),
                     frozenset(held - set(allowed)))


@dataclass(frozen=True)
class ScoreSeen:
    """What one role sees of an alert's score: see `score_seen`."""

    score: int | None  # None: the number may rest on values withheld from the role
    reasons: tuple[str, ...]  # "reason (+weight)", found from the role's own view
    withheld: bool  # the role cannot tell from its view all that the rating rests on


def score_seen(scoring: Scoring, score: int, indicators: Sequence[str], events: Sequence[SeenEvent]) -> ScoreSeen:
    """What a role sees of the score behind an alert's rating, from the alert's events as it sees them.

    The hub scores a child over every agency's shared values, so the number can rest on a value
    withheld from this role. Shown beside the reasons the role may see, the number (or a count of
    hidden reasons) gives the withheld part away by subtraction: a health practitioner seeing
    reasons worth 115 under a score of 135 learns the school reported the child missing from
    education (+20), which the policy withholds from health. So:

    - the number is shown only when the role's own view decides every indicator: each indicator
      behind it is found in what the role sees, and no event holds, beyond the role's view, a field
      an indicator for its type reads. Not merely "every reason is seen": whether the number showed
      would then say whether a withheld field raised it (a withheld school report that leaves the
      number shown did not report an attendance drop);
    - otherwise no number, no count of reasons withheld and no partial sum: the reasons the role
      may see, and that the rating may rest on more, withheld from it (which the role can tell from
      its own view: the note says nothing the withheld values decided), so nobody lowers a rating
      believing the reasons they see are all there is;
    - the rating (RAG) and its deadline are shown to every role that works the queue: a child must
      be seen in time, and three levels set by the partnership's thresholds say far less than the
      number. A per-role score recomputed from the visible reasons was rejected: beside a RED
      rating it invites the same subtraction against the thresholds, and reads as "this child
      scores low" to the person deciding whether to lower the rating.
    """
    seen = assess(scoring, [Scored(e.agency, e.occurred_ms,
                                   indicators_of(scoring, e.event_type or "", e.values, e.occurred_ms))
                            for e in events])
    undecided = any(_reads(i) & e.hidden for e in events for i in scoring.events
                    if not i.event_types or e.event_type in i.event_types)
    withheld = undecided or not set(indicators) <= set(seen.indicators)
    return ScoreSeen(None if withheld else score, seen.reasons, withheld)


def _reads(indicator: EventIndicator) -> set[str]:
    """The fields (section.key) an event indicator reads."""
    fields = {".".join(name.split(".")[:2]) for name in (indicator.where or {})}
    fields |= {"subject.date_of_birth"} if indicator.under_months is not None else set()
    return fields | ({"context.prior_events"} if indicator.prior is not None else set())


def may_read_rationale(author_sharing_role: str | None, viewer_app_role: str,
                       viewer_sharing_role: str | None) -> bool:
    """Whether a viewer may read a decision's or re-rating's rationale. Free text is written from
    its author's view of the child and may quote what only that view holds (a clinical detail, a
    police narrative), and no sharing rule ever decided it for anyone else: it is read by the
    author's sharing role, and by triage managers, who answer for every decision. Everyone else
    (an auditor included) sees that it was made, its outcome, by whom and when."""
    if viewer_app_role == MANAGER:
        return True
    return author_sharing_role is not None and viewer_sharing_role == author_sharing_role


def rationale_withheld_note(author_sharing_role: str | None) -> str:
    """What stands in place of a rationale the viewer may not read: whose it is to read."""
    if not author_sharing_role:
        return "rationale shown to triage managers only"
    return f"rationale written from a {author_sharing_role.replace('_', ' ')}'s view: shown to that role and " \
           "triage managers"


RERATED = "re-rated"  # the history action whose detail carries a rationale (actions.py)


def action_detail(action: str, detail: str, may_read: bool) -> str:
    """An alert history line's detail as the viewer may see it: a re-rating's is "RED to AMBER:
    <rationale>", and the rationale goes unless they may read it (`may_read_rationale`)."""
    if action != RERATED or may_read:
        return detail
    return detail.partition(": ")[0]

