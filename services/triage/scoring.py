"""RAG scoring: risk indicators from every agency added up into one rating, with its reasons.

Pure. An event's own indicators are found once, when it arrives (`indicators_of`), from the
values the sharing stage let leave it: a field no role may see cannot raise a rating, and the
scorer never needs the event again. A child's rating is then assessed over the indicators of
their recent events plus patterns across events (two or more agencies within days; a concern
again, weeks or months after an earlier one), each indicator counted once, because "three
attendance drops" is one concern, not three. Indicators of one `family` count once too, the
heaviest of them: an early-help concern told by police, the school and the hospital is one
concern told three times, not three concerns (the others are listed, at +0, with the reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

RATINGS = ("GREEN", "AMBER", "RED")  # rising urgency
DAY_MS = 86_400_000
LONDON = ZoneInfo("Europe/London")  # the UK's calendar day, on which a date of birth is counted


@dataclass(frozen=True)
class Prior:
    """The child's earlier events from one agency, as enrichment counted them (`context.prior_events`)."""

    agency: str
    within_days: int  # 30, 90 or 365: the counts enrichment keeps
    at_least: int = 1


@dataclass(frozen=True)
class EventIndicator:
    """Found in one event: its type, values of its fields, and optionally the child's history."""

    id: str
    reason: str
    weight: int
    event_types: frozenset[str] = frozenset()  # empty: any
    where: Mapping[str, frozenset[str]] | None = None  # field -> allowed values (as text; booleans "true")
    prior: Prior | None = None
    family: str | None = None  # of one family, only the heaviest found counts
    # the child was younger than this many months when it happened (from a shared date of birth)
    under_months: int | None = None
    # found only beside another indicator of the same event weighing at least this, one that reads
    # what the event says (not the child's standing or history): a circumstance that makes a concern
    # graver (a baby), never a concern by itself
    beside_weight: int | None = None


@dataclass(frozen=True)
class PatternIndicator:
    """Found across a child's events: `at_least` agencies within `within_days` of each other."""

    id: str
    reason: str
    weight: int
    at_least: int
    within_days: int


@dataclass(frozen=True)
class RepeatIndicator:
    """Found across a child's events: concerns (events showing an indicator weighing at least
    `concern_weight`) more than `apart_days` and at most `within_days` apart: a further concern,
    not the same one told again within days."""

    id: str
    reason: str
    weight: int
    concern_weight: int
    apart_days: int
    within_days: int


@dataclass(frozen=True)
class Scoring:
    name: str
    version: str  # SHA-256 of the file: stamped on every alert it rated
    window_days: int  # events this far apart or closer are assessed together
    alert_at: int  # a score below this raises no alert
    amber_at: int
    red_at: int
    events: tuple[EventIndicator, ...]
    patterns: tuple[PatternIndicator, ...]
    repeats: tuple[RepeatIndicator, ...] = ()

    def weight(self, indicator_id: str) -> int:
        return self._by_id[indicator_id][0]

    def reason(self, indicator_id: str) -> str:
        return self._by_id[indicator_id][1]

    def family(self, indicator_id: str) -> str | None:
        return self._families.get(indicator_id)

    @cached_property
    def _families(self) -> dict[str, str]:
        return {i.id: i.family for i in self.events if i.family}

    @cached_property
    def _by_id(self) -> dict[str, tuple[int, str]]:  # made once: every assessment looks weights up
        found: dict[str, tuple[int, str]] = {i.id: (i.weight, i.reason) for i in self.events}
        found |= {p.id: (p.weight, p.reason) for p in self.patterns}
        return found | {r.id: (r.weight, r.reason) for r in self.repeats}


@dataclass(frozen=True)
class Scored:
    """What assessment needs of one event: who reported it, when, and its own indicators."""

    agency: str
    occurred_ms: int
    indicators: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    score: int
    rag: str | None  # None: below the alert threshold
    indicators: tuple[str, ...]  # ids, highest weight first
    reasons: tuple[str, ...]  # "reason (+weight)" for each, in the same order


def indicators_of(scoring: Scoring, event_type: str, values: Mapping[str, Any],
                  occurred_ms: int | None = None) -> tuple[str, ...]:
    """The event indicators one event shows, from its shared values (nested by section) and when it
    happened (an age condition needs both the date of birth and the event's time)."""
    age = age_in_months(_lookup(values, "subject.date_of_birth"), occurred_ms)
    found = [i for i in scoring.events if i.beside_weight is None and _matches(i, event_type, values, age)]
    heaviest = max((i.weight for i in found if _tells_a_concern(i)), default=0)
    found += [i for i in scoring.events
              if i.beside_weight is not None and heaviest >= i.beside_weight and _matches(i, event_type, values, age)]
    return tuple(i.id for i in found)


def _tells_a_concern(indicator: EventIndicator) -> bool:
    """Whether the indicator reads what the event itself says (its payload), not the child's standing
    (context: on a plan, looked after) or history (prior events): only such a concern is made graver
    by a circumstance such as age."""
    return indicator.prior is None and not any(f.startswith("context.") for f in indicator.where or {})


def age_in_months(date_of_birth: Any, occurred_ms: int | None) -> int | None:
    """Whole months from birth to the event (None when either is unknown or unreadable): months as
    a paediatrician counts them, a month passing on the day of the month the child was born. The
    event's day is the UK's calendar day, as a date of birth is (00:30 BST on a birthday is the
    birthday)."""
    if occurred_ms is None or date_of_birth is None:
        return None
    try:
        born = date_of_birth if isinstance(date_of_birth, date) else (
            date(1970, 1, 1) + timedelta(days=date_of_birth) if isinstance(date_of_birth, int)
            and not isinstance(date_of_birth, bool) else date.fromisoformat(str(date_of_birth)[:10]))
        on = datetime.fromtimestamp(occurred_ms / 1000, UTC).astimezone(LONDON).date()
    except (ValueError, OverflowError, OSError, TypeError):
        return None
    months = (on.year - born.year) * 12 + on.month - born.month - (on.day < born.day)
    return months if months >= 0 else None


def assess(scoring: Scoring, events: Sequence[Scored]) -> Assessment:
    """The score, rating and reasons of a set of one child's events."""
    found = {i for e in events for i in e.indicators}
    found |= {p.id for p in scoring.patterns if _pattern_found(p, events)}
    found |= {r.id for r in scoring.repeats if repeat_found(scoring, r, events)}
    ranked = tuple(sorted(found, key=lambda i: (-scoring.weight(i), i)))
    counted = counted_weights(scoring, ranked)
    reasons = tuple(f"{scoring.reason(i)} (+{counted[i]})" if counted[i] or not scoring.family(i) else
                    f"{scoring.reason(i)} (+0: {scoring.family(i)} counts once)" for i in ranked)
    score = sum(counted.values())
    return Assessment(score, rating_for(scoring, score), ranked, reasons)


def counted_weights(scoring: Scoring, found: Sequence[str]) -> dict[str, int]:
    """What each indicator found adds: its weight, except that of each family only the heaviest
    (the first by weight, then id) counts."""
    counted: dict[str, int] = {}
    families: set[str] = set()
    for i in sorted(found, key=lambda i: (-scoring.weight(i), i)):
        family = scoring.family(i)
        counted[i] = 0 if family in families else scoring.weight(i)
        if family:
            families.add(family)
    return counted


def rating_for(scoring: Scoring, score: int) -> str | None:
    if score >= scoring.red_at:
        return "RED"
    if score >= scoring.amber_at:
        return "AMBER"
    return "GREEN" if score >= scoring.alert_at else None


def higher(first: str, second: str | None) -> str:
    """The more urgent of two ratings (a rating is never lowered by the hub)."""
    if second is None:
        return first
    return max(first, second, key=RATINGS.index)


def _matches(indicator: EventIndicator, event_type: str, values: Mapping[str, Any], age: int | None) -> bool:
    if indicator.event_types and event_type not in indicator.event_types:
        return False
    if indicator.under_months is not None and (age is None or age >= indicator.under_months):
        return False
    for field, allowed in (indicator.where or {}).items():
        if _text(_lookup(values, field)) not in allowed:
            return False
    return indicator.prior is None or _prior_found(indicator.prior, values)


def _prior_found(prior: Prior, values: Mapping[str, Any]) -> bool:
    rows = _lookup(values, "context.prior_events") or ()
    key = f"last_{prior.within_days}_days"
    return any(isinstance(r, dict) and r.get("agency") == prior.agency and int(r.get(key) or 0) >= prior.at_least
               for r in rows)


def _pattern_found(pattern: PatternIndicator, events: Sequence[Scored]) -> bool:
    """Events of `at_least` agencies within `within_days` of the first of them: a window slid once
    over the events in time order (a child's state may hold hundreds of events)."""
    ordered = sorted(events, key=lambda e: e.occurred_ms)
    span = pattern.within_days * DAY_MS
    in_window: Counter[str] = Counter()
    end = 0
    for first in ordered:
        while end < len(ordered) and ordered[end].occurred_ms - first.occurred_ms <= span:
            in_window[ordered[end].agency] += 1
            end += 1
        if len(in_window) >= pattern.at_least:
            return True
        in_window[first.agency] -= 1
        if not in_window[first.agency]:
            del in_window[first.agency]
    return False


def is_concern(scoring: Scoring, repeat: RepeatIndicator, event: Scored) -> bool:
    return any(scoring.weight(i) >= repeat.concern_weight for i in event.indicators)


def repeat_found(scoring: Scoring, repeat: RepeatIndicator, events: Sequence[Scored]) -> bool:
    """Two concerns more than `apart_days` and at most `within_days` apart: for each concern in time
    order, the earliest one still within reach is the furthest back (one pass)."""
    times = sorted(e.occurred_ms for e in events if is_concern(scoring, repeat, e))
    apart, within = repeat.apart_days * DAY_MS, repeat.within_days * DAY_MS
    first = 0
    for when in times:
        while when - times[first] > within:
            first += 1
        if when - times[first] > apart:
            return True
    return False


def _lookup(values: Mapping[str, Any], field: str) -> Any:
    node: Any = values
    for part in field.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)
