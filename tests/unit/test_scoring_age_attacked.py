"""The age condition of scoring (under_months, beside_weight) attacked: hostile dates of birth and event
times, a birthday at midnight in the partnership's own time, the age indicator anchored by a status
rather than a concern, the sliding window against a fresh assessment, what a role without the date of
birth sees, and scoring files misusing the new keys."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.triage.scoring import Scored, Scoring, age_in_months, assess, indicators_of
from services.triage.scoring_file import ScoringError, load_scoring
from services.triage_app.views import score_seen, seen_event, visible_reasons
from tests.support.scoring_oracle import assert_first_window_is_the_fresh_one

SCORING = load_scoring()
LONDON = ZoneInfo("Europe/London")
DAY_MS = 86_400_000


def ms(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def attendance(born: object, flagged: bool = True, injury: bool = False) -> dict[str, Any]:
    return {"subject": {"date_of_birth": born},
            "payload": {"safeguarding_concern": flagged, "injury_pattern_concern": injury}}


# --- hostile dates of birth and event times: never an exception, never an age --------------------

HOSTILE = [10**30, -10**30, 10**9, -800_000, True, False, 1.5, 20463.0, math.nan, math.inf, -math.inf,
           "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0661\u0660",
           "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff11\uff10", "2026-02-30", "2026-02-29",
           "x" * 100_000, "9" * 100_000,
           {"a": 1}, [2026, 1, 10], (2026, 1, 10), b"2026-01-10", "", " 2026-01-10", "2026-1-10",
           "10/01/2026", object()]


@pytest.mark.parametrize("born", HOSTILE, ids=lambda v: type(v).__name__ + ":" + repr(v)[:20])
def test_a_hostile_date_of_birth_gives_no_age_and_raises_nothing(born: object) -> None:
    assert age_in_months(born, ms(date(2026, 6, 1))) is None
    found = indicators_of(SCORING, "health.emergency_attendance", attendance(born, injury=True), ms(date(2026, 6, 1)))
    assert "concern-about-a-baby" not in found and "injury-to-baby-not-yet-mobile" not in found


@pytest.mark.parametrize("occurred", [-10**15, 10**20, 2**63, -2**63, 10**400])
def test_an_event_time_out_of_range_gives_no_age(occurred: int) -> None:
    assert age_in_months("2026-01-10", occurred) is None
    indicators_of(SCORING, "health.emergency_attendance", attendance("2026-01-10"), occurred)


def test_an_event_before_1970_or_before_birth_is_read_and_never_negative() -> None:
    # noon on 31 Dec 1969 (1 ms before 1970 UTC was already 1 January in London: British Standard Time)
    assert age_in_months("1969-06-01", -12 * 3_600_000) == 6
    assert age_in_months("2026-01-10", ms(date(2026, 1, 9))) is None
    assert age_in_months(date(2026, 1, 10), ms(date(2026, 1, 10), 0)) == 0


@given(st.integers(min_value=-10**12, max_value=10**12), st.integers(min_value=-2**62, max_value=2**62))
@settings(max_examples=300, deadline=None)
def test_any_int_date_of_birth_and_time_gives_a_nonnegative_age_or_none(born: int, occurred: int) -> None:
    age = age_in_months(born, occurred)
    assert age is None or age >= 0


@given(st.text(max_size=40), st.integers(min_value=0, max_value=4_000_000_000_000))
@settings(max_examples=300, deadline=None)
def test_any_text_date_of_birth_gives_a_nonnegative_age_or_none(born: str, occurred: int) -> None:
    age = age_in_months(born, occurred)
    assert age is None or age >= 0


def test_a_nested_date_of_birth_shape_that_is_not_a_mapping_is_ignored() -> None:
    for values in ({"subject": "2026-01-10"}, {"subject": ["2026-01-10"]}, {"subject": None}, {}):
        found = indicators_of(SCORING, "health.emergency_attendance",
                              {**values, "payload": {"safeguarding_concern": True}}, ms(date(2026, 3, 1)))
        assert found == ("emergency-attendance-safeguarding-flag",)


# --- the age in the partnership's own time ---------------------------------------------------------


def _london_ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=LONDON).timestamp() * 1000)


def test_an_event_at_midnight_utc_on_the_first_birthday_is_no_longer_a_baby() -> None:
    """In winter London time is UTC: the scorer and the partnership agree."""
    occurred = ms(date(2026, 1, 17), 0)
    values = {"subject": {"date_of_birth": "2025-01-17"},
              "payload": {"incident_type": "CHILD_AT_RISK", "child_role": "PRESENT"}}
    assert "concern-about-a-baby" not in indicators_of(SCORING, "police.public_protection_notification", values,
                                                       occurred)


def test_an_event_in_the_first_hour_of_a_summer_birthday_counts_the_birthday() -> None:
    first_birthday = _london_ms(2026, 4, 17, 0, 30)  # 23:30 UTC on 16 April
    police = {"subject": {"date_of_birth": "2025-04-17"},
              "payload": {"incident_type": "CHILD_AT_RISK", "child_role": "PRESENT"}}
    # the case file's own claim: "the same concern on the baby's first birthday is green"
    found = indicators_of(SCORING, "police.public_protection_notification", police, first_birthday)
    assert "concern-about-a-baby" not in found
    six_months = _london_ms(2026, 7, 10, 0, 15)
    injury = indicators_of(SCORING, "health.emergency_attendance", attendance("2026-01-10", injury=True), six_months)
    assert "injury-to-baby-not-yet-mobile" not in found and "injury-to-baby-not-yet-mobile" not in injury
    rated = assess(SCORING, [Scored("HEALTH", six_months, injury)])
    assert rated.rag == "AMBER"  # as at noon the same day (the case file's "same injury at 7 months" rule)


# --- beside_weight: a baby's age never a concern by itself ----------------------------------------


def test_a_babys_age_beside_a_light_indicator_is_not_found() -> None:
    on = ms(date(2026, 6, 1))
    drop = {"subject": {"date_of_birth": "2026-01-10"}, "payload": {"concern_kind": "ATTENDANCE_DROP"}}
    assert indicators_of(SCORING, "education.concern", drop, on) == ("attendance-drop",)


def test_only_the_under_months_of_each_indicator_applies() -> None:
    on = ms(date(2026, 6, 1))
    ordinary = indicators_of(SCORING, "social_care.case_event",
                             {"subject": {"date_of_birth": "2026-01-10"}, "payload": {"kind": "OTHER"}}, on)
    assert ordinary == ()


@pytest.mark.parametrize(("event_type", "payload", "context"), [
    ("social_care.case_event", {"kind": "OTHER"}, {"looked_after": True}),
    ("police.public_protection_notification", {"incident_type": "OTHER", "child_role": "WITNESS"},
     {"child_protection_plan": True}),
])
def test_a_babys_status_alone_is_not_a_concern_made_graver_by_age(event_type: str, payload: dict[str, Any],
                                                                  context: dict[str, Any]) -> None:
    values = {"subject": {"date_of_birth": "2026-01-10"}, "payload": payload, "context": context}
    on = ms(date(2026, 6, 1))
    found = indicators_of(SCORING, event_type, values, on)
    older = indicators_of(SCORING, event_type, {**values, "subject": {"date_of_birth": "2015-01-10"}}, on)
    assert assess(SCORING, [Scored("X", on, found)]).rag == assess(SCORING, [Scored("X", on, older)]).rag == "GREEN"


def test_beside_weight_counts_the_anchor_before_families_reduce_it() -> None:
    """The anchor is any indicator of the event at least that heavy, even one its family counts at +0."""
    on = ms(date(2026, 6, 1))
    found = indicators_of(SCORING, "police.public_protection_notification",
                          {"subject": {"date_of_birth": "2026-01-10"},
                           "payload": {"incident_type": "DOMESTIC_ABUSE", "children_present": True}}, on)
    assert set(found) == {"domestic-abuse-children-present", "concern-about-a-baby"}
    assert assess(SCORING, [Scored("POLICE", on, found)]).rag == "AMBER"


# --- the sliding window and a fresh assessment agree with the real indicators --------------------

BORN = st.sampled_from([None, "2026-01-10", "2025-03-01", "2012-05-05"])
KINDS = st.sampled_from([
    ("health.emergency_attendance", "HEALTH", {"safeguarding_concern": True}),
    ("health.emergency_attendance", "HEALTH", {"safeguarding_concern": True, "injury_pattern_concern": True}),
    ("health.emergency_attendance", "HEALTH", {"safeguarding_concern": False, "maltreatment_alleged": True}),
    ("health.emergency_attendance", "HEALTH", {"safeguarding_concern": False}),
    ("education.concern", "EDUCATION", {"concern_kind": "SAFEGUARDING_CONCERN", "safeguarding_category": "PHYSICAL"}),
    ("education.concern", "EDUCATION", {"concern_kind": "ATTENDANCE_DROP"}),
    ("social_care.case_event", "SOCIAL_CARE", {"kind": "REFERRAL", "referral_category": "PHYSICAL",
                                               "level_of_need": 3}),
    ("social_care.case_event", "SOCIAL_CARE", {"kind": "REFERRAL", "referral_category": "PHYSICAL",
                                               "level_of_need": 4}),
    ("police.public_protection_notification", "POLICE", {"incident_type": "CHILD_AT_RISK", "child_role": "VICTIM"}),
    ("police.public_protection_notification", "POLICE", {"incident_type": "CHILD_AT_RISK", "child_role": "PRESENT"}),
])
START = ms(date(2026, 1, 12))
EVENTS = st.lists(st.tuples(KINDS, BORN, st.integers(0, 400 * DAY_MS)), max_size=14)


@given(EVENTS, st.sampled_from([1, 7, 30]))
@settings(max_examples=300, deadline=None)
def test_the_sliding_window_agrees_with_a_fresh_assessment_with_ages_and_physical_harm(
        events: list[tuple[tuple[str, str, dict[str, Any]], str | None, int]], window_days: int) -> None:
    scoring = Scoring(SCORING.name, SCORING.version, window_days, SCORING.alert_at, SCORING.amber_at, SCORING.red_at,
                      SCORING.events, SCORING.patterns, SCORING.repeats)
    scored = [Scored(agency, START + when, indicators_of(
        scoring, event_type, {"subject": {"date_of_birth": born}, "payload": payload}, START + when))
        for (event_type, agency, payload), born, when in events]
    assert_first_window_is_the_fresh_one(scoring, scored, window_days * DAY_MS)


def test_one_physical_harm_told_by_four_agencies_counts_once_and_an_allegation_is_red() -> None:
    on = ms(date(2026, 3, 2))
    told = [
        Scored("HEALTH", on, indicators_of(SCORING, "health.emergency_attendance",
                                           {"payload": {"injury_pattern_concern": True}}, on)),
        Scored("EDUCATION", on + DAY_MS, indicators_of(SCORING, "education.concern", {"payload": {
            "concern_kind": "SAFEGUARDING_CONCERN", "safeguarding_category": "PHYSICAL"}}, on + DAY_MS)),
        Scored("POLICE", on + DAY_MS, indicators_of(SCORING, "police.public_protection_notification", {"payload": {
            "incident_type": "CHILD_AT_RISK", "child_role": "VICTIM"}}, on + DAY_MS)),
        Scored("SOCIAL_CARE", on + 2 * DAY_MS, indicators_of(SCORING, "social_care.case_event", {"payload": {
            "kind": "REFERRAL", "referral_category": "PHYSICAL"}}, on + 2 * DAY_MS)),
    ]
    rated = assess(SCORING, told)
    assert rated.rag == "AMBER"
    assert sum("physical harm counts once" in r for r in rated.reasons) == 3


# --- what a role that may not see the date of birth sees ------------------------------------------

FLAGGED_BABY = {"subject": {"date_of_birth": "2026-01-10", "given_name": "A"},
                "payload": {"safeguarding_concern": True, "injury_pattern_concern": False}}


def test_a_withheld_date_of_birth_raises_no_reason_the_role_sees() -> None:
    on = ms(date(2026, 3, 1))
    without = visible_reasons(SCORING, [("health.emergency_attendance", "HEALTH", on,
                                         {"payload": FLAGGED_BABY["payload"]})])
    assert not any("baby" in r for r in without)
    with_dob = visible_reasons(SCORING, [("health.emergency_attendance", "HEALTH", on, FLAGGED_BABY)])
    assert any("baby under one" in r for r in with_dob)


def test_a_withheld_date_of_birth_withholds_the_number_whatever_the_childs_age() -> None:
    """The number must not show for the baby (it would give the +60 away) nor, therefore, for an
    older child (whether it showed would tell the role the child is not a baby)."""
    on = ms(date(2026, 3, 1))
    allowed = ["payload.safeguarding_concern", "payload.injury_pattern_concern", "subject.given_name"]
    for born in ("2026-01-10", "2014-01-10"):
        values = {**FLAGGED_BABY, "subject": {"date_of_birth": born, "given_name": "A"}}
        hub = indicators_of(SCORING, "health.emergency_attendance", values, on)
        total = assess(SCORING, [Scored("HEALTH", on, hub)])
        seen = score_seen(SCORING, total.score, total.indicators,
                          [seen_event("health.emergency_attendance", "HEALTH", on, values, allowed)])
        assert seen.score is None and seen.withheld
        assert not any("baby" in r for r in seen.reasons)


def test_a_role_seeing_everything_sees_the_number() -> None:
    on = ms(date(2026, 3, 1))
    allowed = ["payload.safeguarding_concern", "payload.injury_pattern_concern", "subject.given_name",
               "subject.date_of_birth"]
    hub = indicators_of(SCORING, "health.emergency_attendance", FLAGGED_BABY, on)
    total = assess(SCORING, [Scored("HEALTH", on, hub)])
    seen = score_seen(SCORING, total.score, total.indicators,
                      [seen_event("health.emergency_attendance", "HEALTH", on, FLAGGED_BABY, allowed)])
    assert seen.score == total.score == 90 and not seen.withheld


def test_a_role_seeing_the_date_of_birth_but_not_the_flag_gets_no_baby_reason() -> None:
    on = ms(date(2026, 3, 1))
    reasons = visible_reasons(SCORING, [("health.emergency_attendance", "HEALTH", on,
                                         {"subject": {"date_of_birth": "2026-01-10"}})])
    assert reasons == []


# --- scoring files misusing the age keys ----------------------------------------------------------


def _file(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "scoring.yaml"
    path.write_text("scoring: t\nwindow_days: 30\nthresholds: {alert: 30, AMBER: 90, RED: 300}\nindicators:\n"
                    "  - id: baby\n    reason: a baby\n    weight: 60\n" + extra)
    return path


@pytest.mark.parametrize(("extra", "message"), [
    ("    beside_weight: 30\n", "names the circumstance"),
    ("    beside_weight: 0\n    under_months: 12\n", "beside_weight"),
    ("    beside_weight: 1001\n    under_months: 12\n", "beside_weight"),
    ("    under_months: -1\n", "under_months"),
    ("    under_months: 6.5\n", "under_months"),
    ("    under_months: twelve\n", "under_months"),
    ("    under_months: [6]\n", "under_months"),
    ("    under_months: 12\n    family: x\n    across_events: {agencies_at_least: 2, within_days: 7}\n",
     "family"),
    ("    beside_weight: 30\n    across_events: {agencies_at_least: 2, within_days: 7}\n", "reads no single event"),
    ("    under_months: 12\n    repeated: {concern_weight: 30, apart_days: 7, within_days: 365}\n",
     "reads no single event"),
    ("    under_month: 12\n", "under_month"),
])
def test_a_misused_age_key_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ScoringError, match=message):
        load_scoring(_file(tmp_path, extra))


def test_an_age_indicator_in_a_family_loads_and_counts_once(tmp_path: Path) -> None:
    scoring = load_scoring(_file(tmp_path, "    under_months: 12\n    beside_weight: 30\n    family: f\n"
                                 "  - id: other\n    reason: other\n    weight: 30\n    family: f\n"
                                 "    where: {payload.safeguarding_concern: ['true']}\n"))
    found = indicators_of(scoring, "health.emergency_attendance", attendance("2026-01-10"), ms(date(2026, 3, 1)))
    assert set(found) == {"baby", "other"}
    assert assess(scoring, [Scored("HEALTH", 0, found)]).score == 60


def test_the_shipped_age_indicators_are_as_documented() -> None:
    by_id = {i.id: i for i in SCORING.events}
    assert by_id["concern-about-a-baby"].under_months == 12 and by_id["concern-about-a-baby"].beside_weight == 30
    assert by_id["injury-to-baby-not-yet-mobile"].under_months == 6
    assert by_id["referral-physical-baby-not-yet-mobile"].under_months == 6
    assert {i.id for i in SCORING.events if i.family == "physical harm"} == {
        "child-at-risk-victim", "emergency-attendance-injury-pattern", "school-physical-abuse-concern",
        "referral-physical-abuse"}
