"""The first window of a child's events that scores an alert, found in one pass.

Pure. A child's events "within window_days of each other" are scored together: a window is
[t, t + window_days] from an event's time. Trying each start and assessing it afresh costs the
square of a child's events close together (a child may have thousands remembered), so the
windows are slid instead: event indicators are counted in and out as the window moves, and for
each pattern (`at_least` agencies within `within_days`) the time at which the events from each
start first reach it is worked out once; a window holds the pattern when one of the starts in it
reaches it before the window ends. Indicators of one family add only the heaviest present, so a
family's share is worked out again when one of its members comes into or leaves the window. A
repeat (two concerns more than `apart_days` apart) is in a window when its first and last
concerns are that far apart and within the repeat's reach (a window longer than that reach is
searched in full). The score of a window is then exactly `assess`'s.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

from services.triage.scoring import (
    DAY_MS,
    PatternIndicator,
    RepeatIndicator,
    Scored,
    Scoring,
    is_concern,
    rating_for,
    repeat_found,
)

T = TypeVar("T")


def first_scoring_window(scoring: Scoring, events: Sequence[T], scored: Callable[[T], Scored], span_ms: int,
                         holding: Callable[[T], bool]) -> list[T] | None:
    """The earliest window of `span_ms` (from an event's time) holding an event `holding` picks
    whose events score an alert, or None. Linear after sorting."""
    order = sorted(events, key=lambda e: scored(e).occurred_ms)
    facts = [scored(e) for e in order]
    times = [f.occurred_ms for f in facts]
    patterns = [(p.weight, _suffix_min(_reach(facts, p))) for p in scoring.patterns]
    repeats = [(r, *_concerns(scoring, r, facts)) for r in scoring.repeats]
    counts: Counter[str] = Counter()
    members = _members(scoring)
    score = held = 0
    start = end = 0

    def share(indicator: str) -> int:
        """What the indicator's family (or the indicator alone) adds with the window as counted."""
        family = scoring.family(indicator)
        if family is None:
            return scoring.weight(indicator) if counts[indicator] else 0
        return max((scoring.weight(m) for m in members[family] if counts[m]), default=0)

    while start < len(order):
        ends = times[start] + span_ms
        while end < len(order) and times[end] <= ends:
            for indicator in set(facts[end].indicators):
                before = share(indicator)
                counts[indicator] += 1
                score += share(indicator) - before
            held += holding(order[end])
            end += 1
        if held:
            found = [weight for weight, reach in patterns if reach[start] <= ends]
            found += [r.weight for r, after, before in repeats
                      if _repeat_in(scoring, r, facts, times, after, before, start, end)]
            if rating_for(scoring, score + sum(found)) is not None:
                return order[start:end]
        first = times[start]
        while start < len(order) and times[start] == first:  # the next start: the next distinct time
            for indicator in set(facts[start].indicators):
                before = share(indicator)
                counts[indicator] -= 1
                score += share(indicator) - before
            held -= holding(order[start])
            start += 1
    return None


def _members(scoring: Scoring) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for indicator in scoring.events:
        if indicator.family:
            found.setdefault(indicator.family, []).append(indicator.id)
    return found


def _reach(facts: Sequence[Scored], pattern: PatternIndicator) -> list[float]:
    """For each start (in time order): when the events from it on first make `at_least` agencies
    within `within_days` of it (infinity if they never do), as `scoring._pattern_found` counts."""
    span = pattern.within_days * DAY_MS
    reach = [math.inf] * len(facts)
    agencies: Counter[str] = Counter()
    end = 0
    for i, first in enumerate(facts):
        while end < len(facts) and len(agencies) < pattern.at_least and \
                facts[end].occurred_ms - first.occurred_ms <= span:
            agencies[facts[end].agency] += 1
            end += 1
        if len(agencies) >= pattern.at_least:
            reach[i] = facts[end - 1].occurred_ms
        agencies[first.agency] -= 1
        if not agencies[first.agency]:
            del agencies[first.agency]
    return reach


def _concerns(scoring: Scoring, repeat: RepeatIndicator, facts: Sequence[Scored]) -> tuple[list[int], list[int]]:
    """For each position: the first concern at or after it, and the last at or before it (-1: none)."""
    concern = [is_concern(scoring, repeat, f) for f in facts]
    after, before = [-1] * len(facts), [-1] * len(facts)
    nxt = -1
    for i in range(len(facts) - 1, -1, -1):
        nxt = i if concern[i] else nxt
        after[i] = nxt
    last = -1
    for i in range(len(facts)):
        last = i if concern[i] else last
        before[i] = last
    return after, before


def _repeat_in(scoring: Scoring, repeat: RepeatIndicator, facts: Sequence[Scored], times: list[int], after: list[int],
               before: list[int], start: int, end: int) -> bool:
    """Whether the events [start, end) hold the repeat."""
    if end <= start:
        return False
    first, last = after[start], before[end - 1]
    if first < 0 or last < 0 or first >= end or last < start:
        return False
    span = times[last] - times[first]
    if span <= repeat.within_days * DAY_MS:
        return span > repeat.apart_days * DAY_MS
    return repeat_found(scoring, repeat, facts[start:end])  # a window longer than the repeat's reach: in full


def _suffix_min(values: list[float]) -> list[float]:
    out = list(values)
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1])
    return out
