"""Indicators of one family count once, the heaviest: one early-help concern told by police, the
school and the hospital is one concern, not three. The others stay listed at +0 with the reason,
so every point of a score still has one; the sliding window counts families exactly as a fresh
assessment does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.triage.scoring import EventIndicator, PatternIndicator, Scored, Scoring, assess
from services.triage.scoring_file import ScoringError, load_scoring
from tests.support.scoring_oracle import assert_first_window_is_the_fresh_one

DAY_MS = 86_400_000
EDU = frozenset({"education.concern"})
FAMILY = Scoring("t", "v", 30, 30, 90, 300, (
    EventIndicator("police-da", "domestic abuse, children present", 30, EDU, family="early help"),
    EventIndicator("school", "the school raised a concern", 30, EDU, family="early help"),
    EventIndicator("referral", "a referral to social care", 40, EDU, family="early help"),
    EventIndicator("injury", "an injury of concern", 100, EDU),
    EventIndicator("minor", "an attendance drop", 10, EDU),
), (PatternIndicator("two", "two agencies within 7 days", 10, 2, 7),))


def test_one_concern_told_by_three_agencies_counts_once_at_its_heaviest() -> None:
    events = [Scored("POLICE", 0, ("police-da",)), Scored("EDUCATION", DAY_MS, ("school",)),
              Scored("SOCIAL_CARE", 2 * DAY_MS, ("referral",))]
    rated = assess(FAMILY, events)
    assert (rated.score, rated.rag) == (40 + 10, "GREEN")
    assert rated.indicators[0] == "referral"
    assert set(rated.indicators) == {"referral", "police-da", "school", "two"}
    assert "a referral to social care (+40)" in rated.reasons
    assert "the school raised a concern (+0: early help counts once)" in rated.reasons
    assert "domestic abuse, children present (+0: early help counts once)" in rated.reasons


def test_indicators_outside_the_family_still_add_up() -> None:
    rated = assess(FAMILY, [Scored("EDUCATION", 0, ("school", "injury", "minor"))])
    assert (rated.score, rated.rag) == (30 + 100 + 10, "AMBER")


def test_the_heaviest_counts_whichever_came_first_and_ties_go_by_name() -> None:
    tie = assess(FAMILY, [Scored("EDUCATION", 0, ("school",)), Scored("POLICE", 0, ("police-da",))])
    assert tie.reasons[0] == "domestic abuse, children present (+30)"  # police-da sorts before school
    assert tie.score == 30 + 10


SETS = st.sampled_from([(), ("police-da",), ("school",), ("referral",), ("injury",), ("minor",),
                        ("school", "referral"), ("police-da", "injury")])
EVENTS = st.lists(st.tuples(st.sampled_from(["POLICE", "EDUCATION", "SOCIAL_CARE"]), SETS,
                            st.integers(0, 90 * DAY_MS)), max_size=20)


@given(EVENTS, st.sampled_from([1, 7, 30]), st.sampled_from([30, 50, 90, 140]))
def test_the_sliding_window_counts_families_as_a_fresh_assessment_does(
        events: list[tuple[str, tuple[str, ...], int]], window_days: int, alert_at: int) -> None:
    scoring = Scoring("t", "v", window_days, alert_at, max(alert_at, 90), 300, FAMILY.events, FAMILY.patterns)
    scored = [Scored(agency, when, found) for agency, found, when in events]
    assert_first_window_is_the_fresh_one(scoring, scored, window_days * DAY_MS)


def _write(tmp_path: Path, indicator: str) -> Path:
    path = tmp_path / "scoring.yaml"
    path.write_text("scoring: t\nwindow_days: 30\nthresholds: {alert: 30, AMBER: 90, RED: 300}\n"
                    f"indicators:\n  - id: x\n    reason: r\n    weight: 30\n{indicator}\n")
    return path


def test_a_family_on_a_pattern_is_refused_at_load(tmp_path: Path) -> None:
    path = _write(tmp_path, "    family: early help\n    across_events: {agencies_at_least: 2, within_days: 7}")
    with pytest.raises(ScoringError, match="a family groups event indicators"):
        load_scoring(path)


def test_a_family_is_read_from_the_file(tmp_path: Path) -> None:
    scoring = load_scoring(_write(tmp_path, "    family: early help\n    event_types: [education.concern]"))
    assert scoring.family("x") == "early help"
