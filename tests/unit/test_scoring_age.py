"""A child's age as a scoring condition: counted from the date of birth the event shares to the day
it happened, so a concern about a baby is graver, and an injury to a baby not yet mobile is RED."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.triage.scoring import EventIndicator, Scoring, age_in_months, indicators_of
from services.triage.scoring_file import ScoringError, load_scoring

SCORING = load_scoring()


def ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp() * 1000)


def attendance(born: object, flagged: bool = True, injury: bool = False) -> dict[str, object]:
    return {"subject": {"date_of_birth": born},
            "payload": {"safeguarding_concern": flagged, "injury_pattern_concern": injury}}


@pytest.mark.parametrize(("born", "on", "months"), [
    (date(2026, 1, 10), date(2026, 1, 10), 0),
    (date(2026, 1, 10), date(2026, 2, 9), 0),
    (date(2026, 1, 10), date(2026, 2, 10), 1),
    (date(2026, 1, 10), date(2026, 7, 9), 5),
    (date(2026, 1, 10), date(2026, 7, 10), 6),
    (date(2025, 4, 17), date(2026, 4, 16), 11),
    (date(2025, 4, 17), date(2026, 4, 17), 12),
    (date(2024, 1, 31), date(2024, 2, 29), 0),
    (date(2024, 1, 31), date(2024, 3, 1), 1),
])
def test_age_counts_whole_months_a_month_passing_on_the_day_of_birth(born: date, on: date, months: int) -> None:
    assert age_in_months(born, ms(on)) == months
    assert age_in_months(born.isoformat(), ms(on)) == months
    assert age_in_months((born - date(1970, 1, 1)).days, ms(on)) == months  # Avro's date: days since 1970


@pytest.mark.parametrize("born", [None, "", "not a date", "2026-13-01", True, 10**20, [], {"y": 2026}, "2027-01-01"])
def test_an_unreadable_missing_or_future_date_of_birth_gives_no_age(born: object) -> None:
    assert age_in_months(born, ms(date(2026, 6, 1))) is None


def test_without_the_events_time_there_is_no_age() -> None:
    assert age_in_months("2026-01-10", None) is None


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 1, 1)),
       st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 1, 1)))
def test_age_never_decreases_as_time_passes_and_is_never_negative(born: date, on: date) -> None:
    now, later = age_in_months(born, ms(on)), age_in_months(born, ms(on) + 40 * 86_400_000)
    if now is None:
        assert on < born
    else:
        assert now >= 0 and later is not None and later >= now


def test_an_injury_of_concern_is_red_only_for_a_baby_not_yet_mobile() -> None:
    born = "2026-01-10"
    at_5_months = indicators_of(SCORING, "health.emergency_attendance", attendance(born, injury=True),
                                ms(date(2026, 7, 1)))
    at_6_months = indicators_of(SCORING, "health.emergency_attendance", attendance(born, injury=True),
                                ms(date(2026, 7, 10)))
    assert "injury-to-baby-not-yet-mobile" in at_5_months
    assert "injury-to-baby-not-yet-mobile" not in at_6_months
    assert "concern-about-a-baby" in at_5_months and "concern-about-a-baby" in at_6_months


def test_a_babys_age_makes_a_concern_graver_and_is_never_a_concern_by_itself() -> None:
    on = ms(date(2026, 6, 1))
    assert "concern-about-a-baby" in indicators_of(SCORING, "health.emergency_attendance",
                                                   attendance("2026-01-10"), on)
    assert indicators_of(SCORING, "health.emergency_attendance", attendance("2026-01-10", flagged=False), on) == ()
    assert "concern-about-a-baby" not in indicators_of(SCORING, "health.emergency_attendance",
                                                       attendance("2025-05-01"), on)


def test_an_age_condition_is_not_found_when_the_date_of_birth_is_withheld_or_the_time_unknown() -> None:
    """Scoring reads only what the sharing policy released: a withheld date of birth cannot raise
    (nor reveal itself through) a rating."""
    values = attendance("2026-01-10", injury=True)
    assert "concern-about-a-baby" not in indicators_of(SCORING, "health.emergency_attendance", values)
    withheld = {"payload": values["payload"]}
    found = indicators_of(SCORING, "health.emergency_attendance", withheld, ms(date(2026, 3, 1)))
    assert "injury-to-baby-not-yet-mobile" not in found and "concern-about-a-baby" not in found


def test_beside_weight_needs_another_indicator_of_the_same_event_that_heavy() -> None:
    heavy = EventIndicator("heavy", "a heavy one", 100, where={"payload.kind": frozenset({"HEAVY"})})
    light = EventIndicator("light", "a light one", 10, where={"payload.kind": frozenset({"LIGHT"})})
    young = EventIndicator("young", "a young child", 60, under_months=60, beside_weight=50)
    scoring = Scoring("t", "h", 30, 30, 90, 300, (heavy, light, young), (), ())
    on, born = ms(date(2026, 6, 1)), "2024-01-01"
    assert indicators_of(scoring, "x", {"subject": {"date_of_birth": born}, "payload": {"kind": "HEAVY"}}, on) \
        == ("heavy", "young")
    assert indicators_of(scoring, "x", {"subject": {"date_of_birth": born}, "payload": {"kind": "LIGHT"}}, on) \
        == ("light",)
    assert indicators_of(scoring, "x", {"subject": {"date_of_birth": born}}, on) == ()


@pytest.mark.parametrize(("extra", "message"), [
    ("    under_months: 12\n    across_events: {agencies_at_least: 2, within_days: 7}\n", "reads no single event"),
    ("    beside_weight: 30\n    repeated: {concern_weight: 30, apart_days: 7, within_days: 365}\n",
     "reads no single event"),
    ("    under_months: 0\n", "under_months"),
    ("    under_months: 300\n", "under_months"),
    ("    beside_weight: 30\n", "names the circumstance"),
    ("    under_months: 12\n", "an age alone is no concern"),
    ("    under_months: true\n", "under_months"),
])
def test_a_scoring_file_with_a_misused_age_condition_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "scoring.yaml"
    path.write_text("scoring: t\nwindow_days: 30\nthresholds: {alert: 30, AMBER: 90, RED: 300}\nindicators:\n"
                    "  - id: baby\n    reason: a baby\n    weight: 60\n" + extra)
    with pytest.raises(ScoringError, match=message):
        load_scoring(path)
