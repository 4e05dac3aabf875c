"""The sliding scoring window checked against a fresh assessment of every window (a test oracle)."""

from __future__ import annotations

from collections.abc import Sequence

from services.triage.scoring import Scored, Scoring, assess
from services.triage.windows import first_scoring_window


def assert_first_window_is_the_fresh_one(scoring: Scoring, events: Sequence[Scored], span_ms: int) -> None:
    """`first_scoring_window` finds the same first alerting window, scored alike, as assessing every
    window from scratch (events in time order)."""
    scored = sorted(events, key=lambda e: e.occurred_ms)

    def window(first: Scored) -> list[Scored]:
        return [e for e in scored if first.occurred_ms <= e.occurred_ms <= first.occurred_ms + span_ms]

    expected = next((window(first) for first in scored if assess(scoring, window(first)).rag), None)
    found = first_scoring_window(scoring, scored, lambda e: e, span_ms, lambda e: True)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert [e.occurred_ms for e in found] == [e.occurred_ms for e in expected]
        assert assess(scoring, found) == assess(scoring, expected)
