"""Response clocks under a controlled clock: working hours, weekends, bank holidays, Red through
the night, and escalation only upward."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.triage.clocks import AT_RISK, BREACHED, ON_TIME, deadline, escalate, status, working_time_between
from services.triage.profiles import PROFILES_DIR, ProfileError, load_profile

LONDON = ZoneInfo("Europe/London")
RAPID = load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml")
STANDARD = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


def test_red_runs_through_the_night_and_the_weekend() -> None:
    friday_night = at("2026-11-27 23:30")
    assert deadline(RAPID, "RED", friday_night) == at("2026-11-28 01:30")
    assert deadline(STANDARD, "RED", friday_night) == at("2026-11-28 03:30")


def test_amber_in_working_hours_carries_over_to_the_next_working_day() -> None:
    assert deadline(RAPID, "AMBER", at("2026-11-25 10:00")) == at("2026-11-25 16:00")  # Wednesday
    assert deadline(RAPID, "AMBER", at("2026-11-25 15:00")) == at("2026-11-26 13:00")  # 2 h today, 4 h tomorrow
    assert deadline(RAPID, "AMBER", at("2026-11-25 20:00")) == at("2026-11-26 15:00")  # raised after hours


def test_a_weekend_does_not_count() -> None:
    assert deadline(RAPID, "AMBER", at("2026-11-27 16:00")) == at("2026-11-30 14:00")  # Friday -> Monday
    assert deadline(RAPID, "AMBER", at("2026-11-28 11:00")) == at("2026-11-30 15:00")  # raised on Saturday


def test_bank_holidays_do_not_count() -> None:
    # Christmas 2026: Friday 25th, and Monday 28th as Boxing Day's substitute
    assert deadline(RAPID, "AMBER", at("2026-12-24 15:00")) == at("2026-12-29 13:00")
    # 24 working hours: Thursday 24th, then (25th-28th off) Tuesday 29th and Wednesday 30th
    assert deadline(RAPID, "GREEN", at("2026-12-24 09:00")) == at("2026-12-30 17:00")


def test_a_clock_change_keeps_the_working_day_in_local_time() -> None:
    # British Summer Time ends on Sunday 25 October 2026: Monday still opens at 09:00 local time
    assert deadline(RAPID, "AMBER", at("2026-10-23 16:00")) == at("2026-10-26 14:00")
    assert deadline(RAPID, "RED", at("2026-10-25 00:30")).utcoffset() == timedelta(0)


def test_at_risk_after_three_quarters_of_the_time_and_breached_after_all_of_it() -> None:
    start = at("2026-11-25 10:00")
    due = deadline(RAPID, "AMBER", start)  # 16:00
    assert status(RAPID, "AMBER", start, due, at("2026-11-25 14:29")) == ON_TIME
    assert status(RAPID, "AMBER", start, due, at("2026-11-25 14:30")) == AT_RISK  # 4.5 of 6 h
    assert status(RAPID, "AMBER", start, due, at("2026-11-25 16:00")) == BREACHED


def test_working_hours_elapse_only_in_the_working_day() -> None:
    start = at("2026-11-27 16:00")  # Friday
    assert working_time_between(RAPID.calendar, start, at("2026-11-30 09:00")) == timedelta(hours=1)
    due = deadline(RAPID, "AMBER", start)
    assert status(RAPID, "AMBER", start, due, at("2026-11-29 23:00")) == ON_TIME  # the weekend used none


def test_escalation_raises_the_rating_and_shortens_the_deadline_never_the_reverse() -> None:
    opened = at("2026-11-25 10:00")
    due = deadline(RAPID, "GREEN", opened)
    rating, due = escalate(RAPID, "GREEN", due, "RED", at("2026-11-25 11:00"))
    assert (rating, due) == ("RED", at("2026-11-25 13:00"))
    assert escalate(RAPID, rating, due, "AMBER", at("2026-11-25 11:30")) == ("RED", due)  # never lowered
    rating, later = escalate(RAPID, "AMBER", at("2026-11-25 12:00"), "RED", at("2026-11-25 11:50"))
    assert (rating, later) == ("RED", at("2026-11-25 12:00"))  # the earlier deadline stands


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def test_a_profile_that_lets_red_wait_for_office_hours_is_refused(tmp_path: Path) -> None:
    text = (PROFILES_DIR / "rapid-2h-6h-24h.yaml").read_text().replace(
        "RED: {hours: 2, working_hours: false}", "RED: {hours: 2, working_hours: true}")
    with pytest.raises(ProfileError, match="RED must run around the clock"):
        load_profile(write(tmp_path, text))


def test_a_broken_profile_names_its_problem(tmp_path: Path) -> None:
    base = (PROFILES_DIR / "rapid-2h-6h-24h.yaml").read_text()
    with pytest.raises(ProfileError, match="no clock for GREEN"):
        load_profile(write(tmp_path, base.replace("  GREEN: {hours: 24, working_hours: true}\n", "")))
    with pytest.raises(ProfileError, match="day_end 08:00:00 is not after"):
        load_profile(write(tmp_path, base.replace('day_end: "17:00"', 'day_end: "08:00"')))
    with pytest.raises(ProfileError, match="unknown time zone"):
        load_profile(write(tmp_path, base.replace("Europe/London", "Europe/Atlantis")))
