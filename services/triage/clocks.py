"""Response clocks: when a rated alert must be decided, and how close it is. Pure.

A partnership's RAG profile gives each rating a time allowed and says whether that time counts
working hours (its calendar: working days, the working day's hours, bank holidays, in local
time) or runs around the clock. Bank holidays are those of the calendar's UK region (England and
Wales, Scotland, Northern Ireland) from the `holidays` library, for whatever year a clock reaches,
plus any extra closure days the partnership lists. Red always runs around the clock: a red alert
never waits for office hours. Past 75% of its time an alert is at risk, past 100% breached. A
rating may rise and its deadline shorten; neither goes back down by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

RATINGS = ("GREEN", "AMBER", "RED")  # in rising order of urgency
ON_TIME, AT_RISK, BREACHED = "ON_TIME", "AT_RISK", "BREACHED"
# a calendar's region -> the `holidays` library's UK subdivision (England and Wales share bank holidays)
# "none": a service that works every bank holiday (its extra_closures still close days)
REGIONS = {"england-and-wales": "ENG", "scotland": "SCT", "northern-ireland": "NIR", "none": ""}


@lru_cache(maxsize=256)
def bank_holidays(region: str, year: int) -> frozenset[date]:
    """The region's bank holidays in `year` (substitute days included), computed once per year."""
    if not REGIONS[region]:
        return frozenset()
    return frozenset(holidays.country_holidays("GB", subdiv=REGIONS[region], years=year))


@dataclass(frozen=True)
class Calendar:
    timezone: ZoneInfo
    day_start: time
    day_end: time
    working_days: frozenset[int]  # Monday 0 .. Sunday 6
    extra_closures: frozenset[date] = frozenset()  # the partnership's own closed days, besides bank holidays
    region: str = "england-and-wales"  # whose bank holidays: a key of REGIONS
    open_days: frozenset[date] = frozenset()  # bank holidays the partnership works all the same

    def __post_init__(self) -> None:
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}: one of {', '.join(REGIONS)}")

    def is_working_day(self, day: date) -> bool:
        return (day.weekday() in self.working_days and day not in self.extra_closures
                and (day in self.open_days or day not in bank_holidays(self.region, day.year)))

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The working day's hours as instants (local time, so a clock change is respected)."""
        return (datetime.combine(day, self.day_start, self.timezone),
                datetime.combine(day, self.day_end, self.timezone))


@dataclass(frozen=True)
class Clock:
    hours: float
    working_hours: bool = False

    @property
    def allowed(self) -> timedelta:
        return timedelta(hours=self.hours)


@dataclass(frozen=True)
class Profile:
    name: str
    clocks: dict[str, Clock]  # by rating
    calendar: Calendar
    at_risk_share: float = 0.75


def deadline(profile: Profile, rating: str, start: datetime) -> datetime:
    clock = profile.clocks[rating]
    if not clock.working_hours:
        return start + clock.allowed
    return add_working_time(profile.calendar, start, clock.allowed)


def at_risk_time(profile: Profile, rating: str, start: datetime) -> datetime:
    """When an alert whose clock started at `start` has used the at-risk share of its time."""
    clock = profile.clocks[rating]
    part = clock.allowed * profile.at_risk_share
    return add_working_time(profile.calendar, start, part) if clock.working_hours else start + part


def used_share(profile: Profile, rating: str, start: datetime, now: datetime) -> float:
    """How much of the rating's allowed time has gone since `start`, in the clock's own time."""
    clock = profile.clocks[rating]
    spent = working_time_between(profile.calendar, start, now) if clock.working_hours else max(
        now - start, timedelta(0))
    return spent / clock.allowed


def status(profile: Profile, rating: str, start: datetime, due: datetime, now: datetime) -> str:
    """ON_TIME, AT_RISK (75% of the time used) or BREACHED (past the deadline)."""
    if now >= due:
        return BREACHED
    if used_share(profile, rating, start, now) >= profile.at_risk_share:
        return AT_RISK
    return ON_TIME


def escalate(profile: Profile, rating: str, due: datetime, proposed: str,
             at: datetime) -> tuple[str, datetime]:
    """A new assessment of an open alert: the rating only rises; the deadline only shortens (the
    new rating's time runs from now, but never past the deadline already set). Lowering either is
    a person's recorded decision, not this function's."""
    if RATINGS.index(proposed) <= RATINGS.index(rating):
        return rating, due
    return proposed, min(due, deadline(profile, proposed, at))


def add_working_time(calendar: Calendar, start: datetime, allowed: timedelta) -> datetime:
    """The instant when `allowed` working time has passed since `start`."""
    remaining = allowed
    day = start.astimezone(calendar.timezone).date()
    for _ in range(3660):  # ten years of days: a calendar with no working day fails loudly below
        if calendar.is_working_day(day):
            opens, closes = calendar.window(day)
            begin = max(opens, start)
            if begin < closes:
                if begin + remaining <= closes:
                    return begin + remaining
                remaining -= closes - begin
        day += timedelta(days=1)
    raise ValueError("the calendar has no working time in ten years: check its working days")


def working_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    total = timedelta(0)
    if end <= start:
        return total
    day = start.astimezone(calendar.timezone).date()
    last = end.astimezone(calendar.timezone).date()
    while day <= last:
        if calendar.is_working_day(day):
            opens, closes = calendar.window(day)
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return total
