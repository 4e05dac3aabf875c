"""Attacks on the response clocks' bank holidays from the `holidays` library (commit 14b9876).

The library gives a profile's region (england-and-wales, scotland, northern-ireland) its bank
holidays, cached per (region, year); `extra_closures` and the old `bank_holidays` list add days.
The attacks the code survives are ordinary tests; each defect is a strict xfail whose docstring
says what breaks and why it matters for a safeguarding hub's response deadlines.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time as wall
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mash.settings import Settings
from services.enquiry import request_clock
from services.triage.clocks import (
    REGIONS,
    Calendar,
    Profile,
    add_working_time,
    at_risk_time,
    bank_holidays,
    deadline,
    working_time_between,
)
from services.triage.profiles import PROFILES_DIR, ProfileError, load_profile, load_profiles

LONDON = ZoneInfo("Europe/London")
UK_REGIONS = sorted(r for r in REGIONS if r != "none")  # "none": a service that works bank holidays
RAPID = PROFILES_DIR / "rapid-2h-6h-24h.yaml"
STANDARD = PROFILES_DIR / "standard-4h-24h-72h.yaml"
CALENDAR_TAIL = "  region: england-and-wales\n  extra_closures: []\n  open_days: []\n"

# The England and Wales list the shipped profiles carried before the commit (gov.uk, 2025-2027).
OLD_ENGLAND_LIST = ("[2025-01-01, 2025-04-18, 2025-04-21, 2025-05-05, 2025-05-26, 2025-08-25, 2025-12-25, "
                    "2025-12-26, 2026-01-01, 2026-04-03, 2026-04-06, 2026-05-04, 2026-05-25, 2026-08-31, "
                    "2026-12-25, 2026-12-28, 2027-01-01, 2027-03-26, 2027-03-29, 2027-05-03, 2027-05-31, "
                    "2027-08-30, 2027-12-27, 2027-12-28]")
# What a Scottish partnership would have listed by hand before the commit (gov.uk, 2025-2027).
OLD_SCOTTISH_LIST = ("[2025-01-01, 2025-01-02, 2025-04-18, 2025-05-05, 2025-05-26, 2025-08-04, 2025-12-01, "
                     "2025-12-25, 2025-12-26, 2026-01-01, 2026-01-02, 2026-04-03, 2026-05-04, 2026-05-25, "
                     "2026-08-03, 2026-11-30, 2026-12-25, 2026-12-28, 2027-01-01, 2027-01-04, 2027-03-26, "
                     "2027-05-03, 2027-05-31, 2027-08-02, 2027-11-30, 2027-12-27, 2027-12-28]")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


def rapid_text(region: str = "england-and-wales", tail: str | None = None) -> str:
    """The shipped rapid profile, its calendar ending with `tail` (default: the given region)."""
    text = RAPID.read_text()
    assert CALENDAR_TAIL in text
    if tail is None:
        tail = f"  region: {region}\n  extra_closures: []\n"
    return text.replace(CALENDAR_TAIL, tail)


def write(tmp_path: Path, text: str, name: str = "profile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, name: str = "profile.yaml") -> Profile:
    return load_profile(write(tmp_path, text, name))


def regional(tmp_path: Path, region: str) -> Profile:
    return load(tmp_path, rapid_text(region), f"{region}.yaml")


# --- year boundaries, Scotland's 2 January and substitute days -------------------------------------------------


@pytest.mark.parametrize(("region", "due"), [
    ("england-and-wales", "2028-01-04 13:00"),  # Monday 3 January 2028: New Year's Day's substitute
    ("northern-ireland", "2028-01-04 13:00"),
    ("scotland", "2028-01-05 13:00"),           # Monday 3 and Tuesday 4 (2 January's substitute) both off
])
def test_a_clock_across_the_2027_2028_new_year_sees_each_region_s_days(tmp_path: Path, region: str, due: str) -> None:
    # Friday 31 December 2027, 15:00: AMBER has 2 h that day, 4 h left for the new year
    assert deadline(regional(tmp_path, region), "AMBER", at("2027-12-31 15:00")) == at(due)


@pytest.mark.parametrize(("region", "due"), [
    ("england-and-wales", "2026-01-02 13:00"),  # Friday 2 January 2026 is a working day in England
    ("scotland", "2026-01-05 13:00"),           # but the 2 January holiday in Scotland
])
def test_scotland_s_second_of_january_on_a_weekday(tmp_path: Path, region: str, due: str) -> None:
    assert deadline(regional(tmp_path, region), "AMBER", at("2025-12-31 15:00")) == at(due)


@pytest.mark.parametrize(("region", "due"), [
    ("england-and-wales", "2027-01-04 13:00"),
    ("scotland", "2027-01-05 13:00"),  # 2 January 2027 is a Saturday: Monday 4th is its substitute
])
def test_scotland_s_second_of_january_on_a_saturday_has_a_monday_substitute(tmp_path: Path, region: str,
                                                                           due: str) -> None:
    assert deadline(regional(tmp_path, region), "AMBER", at("2026-12-31 15:00")) == at(due)


@pytest.mark.parametrize("region", UK_REGIONS)
def test_christmas_on_a_saturday_closes_the_monday_and_tuesday_substitutes(tmp_path: Path, region: str) -> None:
    # Christmas 2027 is a Saturday, Boxing Day a Sunday: Monday 27th and Tuesday 28th are off
    profile = regional(tmp_path, region)
    assert deadline(profile, "AMBER", at("2027-12-24 15:00")) == at("2027-12-29 13:00")
    assert not profile.calendar.is_working_day(date(2027, 12, 27))
    assert not profile.calendar.is_working_day(date(2027, 12, 28))


def test_the_saturday_itself_is_harmless_to_a_weekday_calendar() -> None:
    """The library lists both the Saturday and the substitute; only the substitute moves a
    Monday-to-Friday clock (the Saturday was never a working day)."""
    calendar = load_profile(RAPID).calendar
    assert date(2027, 12, 25) in bank_holidays("england-and-wales", 2027)
    assert working_time_between(calendar, at("2027-12-24 17:00"), at("2027-12-29 09:00")) == timedelta(0)
    assert working_time_between(calendar, at("2027-12-24 09:00"), at("2027-12-29 17:00")) == timedelta(hours=16)


def test_a_seven_day_calendar_closes_both_the_day_and_its_substitute(tmp_path: Path) -> None:
    """Pinned choice (not asserted as right or wrong): a partnership that counts weekends as working
    days loses Saturday 25, Sunday 26 and both substitutes, four days in all, because the library's
    list holds the actual days and the observed ones alike."""
    text = rapid_text().replace("working_days: [MON, TUE, WED, THU, FRI]",
                                "working_days: [MON, TUE, WED, THU, FRI, SAT, SUN]")
    calendar = load(tmp_path, text).calendar
    assert [calendar.is_working_day(date(2027, 12, d)) for d in range(24, 30)] == [
        True, False, False, False, False, True]


def test_substitute_days_never_spill_into_the_next_year_s_cache_entry() -> None:
    """Each (region, year) entry must hold every closed day of that year and only that year, or a
    clock crossing a year boundary would miss a day."""
    for region in UK_REGIONS:
        for year in range(2020, 2060):
            days = bank_holidays(region, year)
            assert all(d.year == year for d in days)


# --- one-off days the library includes ------------------------------------------------------------------------


@pytest.mark.parametrize("day", [date(2022, 6, 3), date(2022, 9, 19), date(2023, 5, 8)])
@pytest.mark.parametrize("region", UK_REGIONS)
def test_the_jubilee_state_funeral_and_coronation_are_closed_everywhere(tmp_path: Path, region: str,
                                                                       day: date) -> None:
    """Nationwide one-off bank holidays a MASH closed for: the library has them in every region."""
    assert not regional(tmp_path, region).calendar.is_working_day(day)


def test_scotland_s_2026_one_off_day_is_closed_in_scotland_only(tmp_path: Path) -> None:
    """Pinned: the library lists Monday 15 June 2026 ("Scotland's participation in the FIFA World
    Cup final") for Scotland, so every Scottish AMBER/GREEN clock stops that day. The commit's
    docs speak of substitute days and of adding one-off days, not of the library's own one-off
    days, and nothing lets a partnership reopen one (see the xfail below)."""
    assert not regional(tmp_path, "scotland").calendar.is_working_day(date(2026, 6, 15))
    assert load_profile(RAPID).calendar.is_working_day(date(2026, 6, 15))
    assert regional(tmp_path, "northern-ireland").calendar.is_working_day(date(2026, 6, 15))


def test_a_partnership_can_reopen_a_library_day_it_does_not_observe(tmp_path: Path) -> None:
    """What breaks: the library's list is imposed whole. A Scottish council whose MASH works on a
    banking holiday it does not observe (Monday 15 June 2026, the World Cup day; often the first
    Monday of August or St Andrew's Day, which Scottish councils replace with local holidays), or
    any partnership that staffs bank holidays, cannot say so: every such key is refused (the
    calendar forbids unknown keys), and before the commit an omitted day simply stayed open.
    Why it matters: the clock then allows a day's more time than the team has, so an AMBER or
    GREEN alert or a partner's information request shows ON_TIME when the child has in fact waited
    past the partnership's own deadline; breaches go unreported and unescalated."""
    reopened = []
    for key in ("open_days", "extra_openings", "working_bank_holidays", "reopened_days", "exclude_holidays"):
        tail = f"  region: scotland\n  extra_closures: []\n  {key}: [2026-06-15]\n"
        try:
            calendar = load(tmp_path, rapid_text(tail=tail), f"{key}.yaml").calendar
        except ProfileError:
            continue  # refused: the calendar forbids unknown keys
        reopened.append(calendar.is_working_day(date(2026, 6, 15)))
    assert any(reopened), "no calendar key reopens Monday 15 June 2026 for a Scottish partnership"


# --- region spelling ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["Scotland", "SCOTLAND", '" scotland"', '"scotland "', "Northern Ireland",
                                    "england_and_wales", '""', "null"])
def test_a_region_in_another_case_or_with_spaces_is_refused_loudly(tmp_path: Path, region: str) -> None:
    """Refused at load (the hub will not start) naming the file: never silently England's days."""
    with pytest.raises(ProfileError, match=r"oddly-spelt\.yaml: calendar\.region"):
        load(tmp_path, rapid_text(region), "oddly-spelt.yaml")


def test_unquoted_trailing_spaces_are_yaml_s_and_still_mean_the_region(tmp_path: Path) -> None:
    assert load(tmp_path, rapid_text("scotland   ")).calendar.region == "scotland"


# --- extra closures and the old key ---------------------------------------------------------------------------


def test_both_keys_add_up_and_the_old_one_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tail = "  region: scotland\n  extra_closures: [2028-06-02]\n  bank_holidays: [2028-06-05]\n"
    with caplog.at_level(logging.WARNING, logger="services.triage.profiles"):
        calendar = load(tmp_path, rapid_text(tail=tail), "both.yaml").calendar
    assert calendar.extra_closures == frozenset({date(2028, 6, 2), date(2028, 6, 5)})
    assert not calendar.is_working_day(date(2028, 6, 2)) and not calendar.is_working_day(date(2028, 6, 5))
    assert not calendar.is_working_day(date(2028, 1, 4))  # Scotland's own days still count
    assert any("both.yaml" in r.getMessage() and "bank_holidays" in r.getMessage() for r in caplog.records)


def test_an_extra_closure_on_a_weekend_changes_nothing(tmp_path: Path) -> None:
    tail = "  region: england-and-wales\n  extra_closures: [2028-06-03, 2028-06-04]\n"
    closed = load(tmp_path, rapid_text(tail=tail))
    plain = load_profile(RAPID)
    start = at("2028-06-02 15:00")  # Friday
    assert deadline(closed, "AMBER", start) == deadline(plain, "AMBER", start) == at("2028-06-05 13:00")


def test_an_old_england_only_profile_keeps_its_2025_2027_deadlines(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A deployment's profile written before the commit (the old key only, no region) is refused
    until it names its region; named, it loads with a warning and has the very same working days
    in 2025-2027 as its list gave it."""
    with pytest.raises(ProfileError, match="name the region"):
        load(tmp_path, rapid_text(tail=f"  bank_holidays: {OLD_ENGLAND_LIST}\n"), "unnamed.yaml")
    tail = f"  region: england-and-wales\n  bank_holidays: {OLD_ENGLAND_LIST}\n"
    with caplog.at_level(logging.WARNING, logger="services.triage.profiles"):
        calendar = load(tmp_path, rapid_text(tail=tail), "old.yaml").calendar
    assert any("old.yaml" in r.getMessage() for r in caplog.records)
    listed = {date.fromisoformat(d) for d in OLD_ENGLAND_LIST.strip("[]").split(", ")}
    day = date(2025, 1, 1)
    while day <= date(2027, 12, 31):
        assert calendar.is_working_day(day) == (day.weekday() < 5 and day not in listed), day
        day += timedelta(days=1)


def test_an_old_scottish_profile_keeps_its_2025_2027_deadlines(tmp_path: Path) -> None:
    """What breaks: a Scottish (or Northern Irish) partnership's profile written before the commit
    listed its own bank holidays under `bank_holidays` and had no `region` (there was none). It now
    loads with region england-and-wales by default and its list as extra closures, so England's
    Easter Monday and late-August Monday are added to Scotland's days. The warning only says the
    list is read as extra closures; it does not say the region was assumed, nor refuse the load.
    Why it matters: a Scottish AMBER alert raised on Maundy Thursday 2 April 2026 at 15:00 was due
    on Easter Monday 6 April 13:00 (a Scottish working day); after the upgrade it is due a day
    later, so an alert left untouched over Easter is not shown as breached and not escalated."""
    with pytest.raises(ProfileError, match="name the region"):  # refused until it names its region
        load(tmp_path, rapid_text(tail=f"  bank_holidays: {OLD_SCOTTISH_LIST}\n"), "old-scottish.yaml")
    scottish = load(tmp_path, rapid_text(tail=f"  region: scotland\n  bank_holidays: {OLD_SCOTTISH_LIST}\n"),
                    "old-scottish-named.yaml")
    assert scottish.calendar.is_working_day(date(2026, 4, 6))
    assert scottish.calendar.is_working_day(date(2026, 8, 31))
    assert deadline(scottish, "AMBER", at("2026-04-02 15:00")) == at("2026-04-06 13:00")


def test_an_old_profile_open_on_bank_holidays_is_warned_before_its_deadlines_move(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What breaks: before the commit `bank_holidays: []` (or no key at all) meant the partnership
    counts bank holidays as working days, as a MASH with bank-holiday duty cover may. The loader
    warns only when the old list is non-empty, so such a profile now closes on every England and
    Wales bank holiday without a word in the log.
    Why it matters: every AMBER/GREEN deadline and partner request spanning a bank holiday moves a
    day later with nothing telling the partnership; overdue work is not flagged on the day it was
    due under the partnership's own agreed standard."""
    with pytest.raises(ProfileError, match="none keeps every bank holiday a working day"):
        load(tmp_path, rapid_text(tail="  bank_holidays: []\n"), "open-every-day.yaml")
    with caplog.at_level(logging.WARNING, logger="services.triage.profiles"):
        calendar = load(tmp_path, rapid_text(tail="  extra_closures: []\n"), "no-key.yaml").calendar  # warned
    assert any("no-key.yaml" in r.getMessage() and "region" in r.getMessage() for r in caplog.records)
    assert not calendar.is_working_day(date(2026, 12, 28))
    open_every_day = load(tmp_path, rapid_text("none"), "none.yaml").calendar
    assert open_every_day.is_working_day(date(2026, 12, 28))


# --- clocks started on or just before a bank holiday, and clock changes ---------------------------------------


def test_a_clock_started_on_a_bank_holiday_starts_the_next_working_morning() -> None:
    rapid = load_profile(RAPID)
    assert deadline(rapid, "AMBER", at("2028-04-17 10:00")) == at("2028-04-18 15:00")  # on Easter Monday
    assert at_risk_time(rapid, "AMBER", at("2028-04-17 10:00")) == at("2028-04-18 13:30")


def test_a_clock_started_at_23_59_before_a_bank_holiday_loses_no_time() -> None:
    rapid = load_profile(RAPID)
    assert deadline(rapid, "AMBER", at("2028-04-13 23:59")) == at("2028-04-18 15:00")  # Thursday before Good Friday
    assert deadline(rapid, "AMBER", at("2028-04-13 16:59")) == at("2028-04-18 14:59")


def test_easter_monday_straight_after_the_clocks_go_forward() -> None:
    """British Summer Time starts on Easter Sunday 28 March 2027: Good Friday and Easter Monday
    are off and Tuesday opens at 09:00 BST (08:00 UTC), whatever zone the start is given in."""
    rapid = load_profile(RAPID)
    due = deadline(rapid, "AMBER", at("2027-03-25 15:00"))
    assert due == at("2027-03-30 13:00") and due.astimezone(UTC) == datetime(2027, 3, 30, 12, tzinfo=UTC)
    assert deadline(rapid, "AMBER", datetime(2027, 3, 25, 15, tzinfo=UTC)) == due
    assert deadline(rapid, "GREEN", at("2027-03-25 09:00")) == at("2027-03-31 17:00")
    assert working_time_between(rapid.calendar, at("2027-03-25 17:00"), at("2027-03-30 09:00")) == timedelta(0)


def test_scotland_works_easter_monday_after_the_clock_change(tmp_path: Path) -> None:
    assert deadline(regional(tmp_path, "scotland"), "AMBER", at("2027-03-25 15:00")) == at("2027-03-29 13:00")


def test_the_october_clock_change_before_a_bank_holiday_free_week_keeps_local_hours() -> None:
    # BST ends Sunday 31 October 2027; Friday 29th 16:00 -> Monday 1 November 14:00 GMT
    assert deadline(load_profile(RAPID), "AMBER", at("2027-10-29 16:00")) == at("2027-11-01 14:00")


# --- far years, long spans, cost and the cache ----------------------------------------------------------------


@pytest.mark.parametrize("year", [1872, 1900, 1970, 2100, 2200])
@pytest.mark.parametrize("region", UK_REGIONS)
def test_far_years_do_not_raise(region: str, year: int) -> None:
    days = bank_holidays(region, year)
    assert all(d.year == year for d in days)
    calendar = Calendar(LONDON, datetime.min.time().replace(hour=9), datetime.min.time().replace(hour=17),
                        frozenset(range(5)), region=region)
    start = datetime(year, 12, 20, 9, tzinfo=LONDON)
    assert add_working_time(calendar, start, timedelta(hours=40)) > start


def test_before_the_library_s_first_year_there_are_no_bank_holidays() -> None:
    """Pinned: the library's UK calendar starts in 1872; earlier years are empty, not an error."""
    assert bank_holidays("england-and-wales", 1871) == frozenset()


def test_a_fifty_year_span_counts_every_working_day() -> None:
    calendar = load_profile(RAPID).calendar
    start, end = date(2025, 1, 1), date(2075, 1, 1)
    expected = timedelta(0)
    day = start
    while day < end:
        if day.weekday() < 5 and day not in bank_holidays("england-and-wales", day.year):
            expected += timedelta(hours=8)
        day += timedelta(days=1)
    assert working_time_between(calendar, at("2025-01-01 00:00"), at("2074-12-31 23:59")) == expected


def test_the_longest_allowed_clock_ends_within_a_year() -> None:
    """The profile schema allows 720 hours: 90 working days, far inside the ten-year loop."""
    rapid = load_profile(RAPID)
    due = add_working_time(rapid.calendar, at("2027-12-01 09:00"), timedelta(hours=720))
    assert at("2028-04-01 00:00") < due < at("2028-06-01 00:00")


def test_is_working_day_is_cheap_and_the_cache_stays_bounded() -> None:
    calendar = load_profile(RAPID).calendar
    for region in UK_REGIONS:  # every weekday of two centuries, three regions
        other = Calendar(calendar.timezone, calendar.day_start, calendar.day_end, calendar.working_days,
                         region=region)
        day = date(1900, 1, 1)
        while day.year <= 2100:
            other.is_working_day(day)
            day += timedelta(days=1)
    assert bank_holidays.cache_info().currsize <= 256
    day = date(2028, 4, 18)
    calendar.is_working_day(day)
    calls = 200_000
    began = wall.perf_counter()
    for _ in range(calls):
        calendar.is_working_day(day)
    per_call = (wall.perf_counter() - began) / calls
    assert per_call < 5e-6, f"{per_call * 1e9:.0f} ns a call"


def test_a_cold_cache_filled_from_many_threads_agrees_with_one_thread() -> None:
    """The hub runs stages in threads: a fresh interpreter, 8 threads racing to fill the cache (and
    the library's lazy loading) for three regions and sixty years, must see what one thread sees."""
    script = textwrap.dedent("""
        import random, threading
        from services.triage.clocks import REGIONS, bank_holidays
        keys = [(r, y) for r in REGIONS for y in range(2020, 2080)]
        seen, errors, go = [], [], threading.Barrier(8)
        def run(seed):
            order = keys[:]; random.Random(seed).shuffle(order); go.wait()
            try:
                seen.append({k: bank_holidays(*k) for k in order})
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        bank_holidays.cache_clear()
        alone = {k: bank_holidays(*k) for k in keys}
        assert not errors, errors
        assert len(seen) == 8 and all(s == alone for s in seen)
        print("agreed")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and done.stdout.strip() == "agreed", done.stderr


# --- the request clock and the triage clock -------------------------------------------------------------------


@pytest.mark.parametrize("region", UK_REGIONS)
def test_the_request_clock_and_the_triage_clock_agree_for_one_profile(tmp_path: Path, region: str) -> None:
    profile = regional(tmp_path, region)
    for sent in (at("2027-12-24 15:00"), at("2027-12-31 15:00"), at("2027-03-25 15:00"), at("2026-06-12 15:00")):
        for rag in ("RED", "AMBER", "GREEN"):
            assert request_clock.due(profile, rag, sent) == (at_risk_time(profile, rag, sent),
                                                              deadline(profile, rag, sent))


def test_the_request_clock_follows_the_partnership_s_region(tmp_path: Path) -> None:
    """What breaks: the region lives in each profile file, and the hub reads two (the alert
    profile, MASH_TRIAGE_PROFILE, and the request profile, MASH_TRIAGE_REQUEST_PROFILE, defaulting
    to the shipped England and Wales standard profile). A Scottish partnership that sets its alert
    profile to `region: scotland` (what README and the settings' description point it to) still
    has partner-agency requests timed on England's bank holidays: nothing warns or refuses the
    mismatch, and the request profile's description does not mention the region.
    Why it matters: requests to police, health or education in Scotland fall due on 2 January,
    the first Monday of August or St Andrew's Day as if they were working days (overdue too soon
    is noisy), and skip Easter Monday and late August (too late: an unanswered request for a child
    is not chased or escalated when the Scottish partnership expects it)."""
    settings = Settings(triage_profile=write(tmp_path, rapid_text("scotland"), "scotland.yaml"))
    with pytest.raises(ProfileError, match="MASH_TRIAGE_REQUEST_PROFILE"):  # the app refuses to start on it
        load_profiles(settings.triage_profile, settings.triage_request_profile)
    scottish_requests = write(tmp_path, rapid_text("scotland"), "scottish-requests.yaml")
    alerts, requests = load_profiles(settings.triage_profile, scottish_requests)
    assert requests.calendar.region == alerts.calendar.region == "scotland"
