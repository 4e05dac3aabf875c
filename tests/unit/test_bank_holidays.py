"""Bank holidays by UK region, from the `holidays` library, for any year a clock reaches (the
profiles once listed 2025-2027 by hand, so from 2028 every holiday counted as a working day)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.triage.clocks import Calendar, Profile, deadline, working_time_between
from services.triage.profiles import PROFILES_DIR, ProfileError, load_profile

LONDON = ZoneInfo("Europe/London")
RAPID = PROFILES_DIR / "rapid-2h-6h-24h.yaml"
STANDARD = PROFILES_DIR / "standard-4h-24h-72h.yaml"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


def profile_text(region: str | None = None, extra: str = "") -> str:
    text = RAPID.read_text()
    if region is not None:
        text = text.replace("region: england-and-wales", f"region: {region}")
    return text + extra


def load(tmp_path: Path, text: str, name: str = "profile.yaml") -> Calendar:
    path = tmp_path / name
    path.write_text(text)
    return load_profile(path).calendar


@pytest.mark.parametrize("name", [RAPID, STANDARD])
def test_the_shipped_profiles_keep_no_hand_kept_list(name: Path) -> None:
    text = name.read_text()
    assert "bank_holidays" not in text and "region: england-and-wales" in text


@pytest.mark.parametrize("day", [
    date(2028, 1, 3),    # New Year's Day falls on a Saturday: Monday is its substitute
    date(2028, 4, 14),   # Good Friday
    date(2028, 4, 17),   # Easter Monday
    date(2028, 5, 1), date(2028, 5, 29), date(2028, 8, 28),
    date(2028, 12, 25), date(2028, 12, 26),
    date(2031, 1, 1), date(2031, 4, 11), date(2031, 4, 14), date(2031, 5, 5), date(2031, 5, 26),
    date(2031, 8, 25), date(2031, 12, 25), date(2031, 12, 26),
    date(2032, 12, 27), date(2032, 12, 28),  # Christmas and Boxing Day on a weekend: Monday and Tuesday
])
def test_england_and_wales_bank_holidays_after_2027_are_not_working_days(day: date) -> None:
    calendar = load_profile(RAPID).calendar
    assert day.weekday() < 5  # a weekday, so only a bank holiday can make it a day off
    assert not calendar.is_working_day(day)


def test_ordinary_weekdays_around_them_still_work() -> None:
    calendar = load_profile(RAPID).calendar
    for day in (date(2028, 4, 13), date(2028, 4, 18), date(2028, 12, 27), date(2031, 1, 2), date(2032, 12, 29)):
        assert calendar.is_working_day(day)


def test_a_2028_easter_weekend_skips_good_friday_and_easter_monday() -> None:
    rapid = load_profile(RAPID)
    # Thursday 13 April 2028, 15:00: AMBER has 2 h that day; Friday 14th to Monday 17th are off
    assert deadline(rapid, "AMBER", at("2028-04-13 15:00")) == at("2028-04-18 13:00")
    # GREEN, 24 working hours from Thursday 09:00: Thursday, then Tuesday 18th and Wednesday 19th
    assert deadline(rapid, "GREEN", at("2028-04-13 09:00")) == at("2028-04-19 17:00")
    standard = load_profile(STANDARD)  # the request clocks: GREEN 72 working hours, nine working days
    assert deadline(standard, "GREEN", at("2028-04-13 09:00")) == at("2028-04-27 17:00")
    assert working_time_between(rapid.calendar, at("2028-04-13 17:00"), at("2028-04-18 09:00")).total_seconds() == 0


def test_a_2031_christmas_is_skipped() -> None:
    rapid = load_profile(RAPID)
    # Wednesday 24 December 2031, 15:00: Thursday 25th and Friday 26th off, then the weekend
    assert deadline(rapid, "AMBER", at("2031-12-24 15:00")) == at("2031-12-29 13:00")


def test_a_clock_across_new_year_sees_the_new_year_s_holidays() -> None:
    # Friday 31 December 2027, 15:00: 2 h that day; Monday 3 January 2028 is New Year's substitute
    assert deadline(load_profile(RAPID), "AMBER", at("2027-12-31 15:00")) == at("2028-01-04 13:00")


def test_scotland_has_its_own_days(tmp_path: Path) -> None:
    scotland = load(tmp_path, profile_text("scotland"))
    england = load_profile(RAPID).calendar
    assert not scotland.is_working_day(date(2031, 1, 2)) and england.is_working_day(date(2031, 1, 2))
    assert not scotland.is_working_day(date(2028, 11, 30)) and england.is_working_day(date(2028, 11, 30))
    # St Andrew's Day 2031 is a Sunday: Monday 1 December is its substitute in Scotland only
    assert not scotland.is_working_day(date(2031, 12, 1)) and england.is_working_day(date(2031, 12, 1))
    # Easter Monday is not a bank holiday in Scotland; the first Monday of August is
    assert scotland.is_working_day(date(2028, 4, 17))
    assert not scotland.is_working_day(date(2028, 8, 7)) and england.is_working_day(date(2028, 8, 7))
    assert not scotland.is_working_day(date(2028, 4, 14))  # Good Friday in both


def test_northern_ireland_has_its_own_days(tmp_path: Path) -> None:
    ni = load(tmp_path, profile_text("northern-ireland"))
    england = load_profile(RAPID).calendar
    for day in (date(2028, 3, 17), date(2028, 7, 12), date(2031, 3, 17)):  # St Patrick's Day, Battle of the Boyne
        assert not ni.is_working_day(day) and england.is_working_day(day)
    assert not ni.is_working_day(date(2031, 7, 14))  # 12 July 2031 is a Saturday: Monday instead
    assert not ni.is_working_day(date(2028, 4, 17))  # Easter Monday, as in England


def test_the_region_defaults_to_england_and_wales(tmp_path: Path) -> None:
    calendar = load(tmp_path, RAPID.read_text().replace("  region: england-and-wales\n", ""))
    assert calendar.region == "england-and-wales"
    assert not calendar.is_working_day(date(2028, 4, 17))


@pytest.mark.parametrize("region", ["wales", "england", "ENG", "Scotland"])
def test_an_unknown_region_is_refused_naming_the_file_and_the_regions(tmp_path: Path, region: str) -> None:
    with pytest.raises(ProfileError) as refused:
        load(tmp_path, profile_text(region), "northern-partnership.yaml")
    message = str(refused.value)
    assert "northern-partnership.yaml" in message and "calendar.region" in message
    assert f"unknown region {region!r}" in message
    assert "england-and-wales, scotland, northern-ireland" in message


def test_extra_closures_count_as_days_off(tmp_path: Path) -> None:
    text = profile_text().replace("extra_closures: []", "extra_closures: [2028-06-02, 2031-09-19]")
    calendar = load(tmp_path, text)
    assert not calendar.is_working_day(date(2028, 6, 2)) and not calendar.is_working_day(date(2031, 9, 19))
    assert not calendar.is_working_day(date(2028, 4, 17))  # and the bank holidays still count
    assert load_profile(RAPID).calendar.is_working_day(date(2028, 6, 2))
    # Thursday 1 June 2028, 15:00: the Friday is closed, so AMBER runs on into Monday
    closed = Profile("closed on 2 June", load_profile(RAPID).clocks, calendar)
    assert deadline(closed, "AMBER", at("2028-06-01 15:00")) == at("2028-06-05 13:00")


def test_an_old_profile_with_a_bank_holidays_list_still_loads_as_extra_days(tmp_path: Path) -> None:
    text = profile_text().replace(
        "extra_closures: []", "bank_holidays: [2025-12-25, 2025-12-26, 2027-12-27, 2029-07-02]")
    calendar = load(tmp_path, text)
    assert not calendar.is_working_day(date(2029, 7, 2))  # an old list's own day still counts
    assert not calendar.is_working_day(date(2028, 4, 17))  # and the library's days beyond its last year


def test_a_calendar_cannot_be_built_for_an_unknown_region() -> None:
    with pytest.raises(ValueError, match="unknown region 'wales'"):
        Calendar(LONDON, datetime.min.time(), datetime.max.time(), frozenset(range(5)), region="wales")
