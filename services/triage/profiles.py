"""RAG profiles from YAML: a partnership's response times, validated at load.

A profile that lets Red wait for office hours, has no working day, ends its working day before it
starts, or names an unknown region is refused with a message naming the file and the problem.

Bank holidays are not listed in a profile: the calendar's `region` (england-and-wales, the
default; scotland; northern-ireland; none, for a service that works them) picks them from the
`holidays` library for every year. `extra_closures` lists the partnership's own closed days besides
them (a one-off national day of mourning, a local closure); `open_days` the library's days it works
all the same (a Scottish council working a banking holiday it does not observe). A profile written
before regions, with its own `bank_holidays` list, is refused until it names its region: counting
England's days for it, or none, would move its deadlines without a word. Its list is then read as
extra closures.
"""

from __future__ import annotations

import logging
from datetime import date, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.triage.clocks import REGIONS, Calendar, Clock, Profile

log = logging.getLogger(__name__)

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
PROFILES_DIR = Path(__file__).resolve().parents[2] / "policies" / "triage"


class ProfileError(ValueError):
    """A RAG profile that must not be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockSpec(_Strict):
    hours: float = Field(gt=0, le=24 * 30)
    working_hours: bool = False


class CalendarSpec(_Strict):
    timezone: str = "Europe/London"
    working_days: tuple[Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"], ...] = Field(min_length=1)
    day_start: time
    day_end: time
    region: str = "england-and-wales"
    extra_closures: tuple[date, ...] = ()
    open_days: tuple[date, ...] = ()
    bank_holidays: tuple[date, ...] | None = None  # before region: read as extra closures once a region is named

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}: use one of {', '.join(REGIONS)} (England and Wales "
                             "share bank holidays: england-and-wales)")
        return region

    @model_validator(mode="after")
    def _day_is_a_day(self) -> CalendarSpec:
        if self.bank_holidays is not None and "region" not in self.model_fields_set:
            raise ValueError(
                "bank_holidays is a list from before regions: name the region whose bank holidays the clocks "
                f"count ({', '.join(REGIONS)}; none keeps every bank holiday a working day), then keep only the "
                "partnership's own closed days, as extra_closures (a Scottish or Northern Irish list read as "
                "England's would move deadlines)")
        if self.day_end <= self.day_start:
            raise ValueError(f"day_end {self.day_end} is not after day_start {self.day_start}")
        return self


class ProfileSpec(_Strict):
    profile: str = Field(min_length=1)
    description: str = ""
    clocks: dict[Literal["RED", "AMBER", "GREEN"], ClockSpec]
    calendar: CalendarSpec
    at_risk_share: float = Field(0.75, gt=0, lt=1)

    @model_validator(mode="after")
    def _complete_and_red_never_waits(self) -> ProfileSpec:
        missing = {"RED", "AMBER", "GREEN"} - set(self.clocks)
        if missing:
            raise ValueError(f"no clock for {', '.join(sorted(missing))}")
        if self.clocks["RED"].working_hours:
            raise ValueError("RED must run around the clock (working_hours: false): a red alert never "
                             "waits for office hours")
        return self


def load_profile(path: Path) -> Profile:
    try:
        spec = ProfileSpec.model_validate(yaml.safe_load(path.read_text()))
        zone = ZoneInfo(spec.calendar.timezone)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the profile ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'profile'}: {e['msg']}" for e in exc.errors())
        raise ProfileError(f"{path}: {problems}") from None
    except ZoneInfoNotFoundError:
        raise ProfileError(f"{path}: unknown time zone {spec.calendar.timezone!r}") from None
    if "region" not in spec.calendar.model_fields_set:
        log.warning("%s: calendar.region is not set: counting %s bank holidays; name the region (or none) to say so",
                    path, spec.calendar.region)
    if spec.calendar.bank_holidays:
        log.warning("%s: calendar.bank_holidays is read as extra closure days; bank holidays now come from the "
                    "calendar's region (%s), so list only the partnership's own closures, as extra_closures",
                    path, spec.calendar.region)
    calendar = Calendar(zone, spec.calendar.day_start, spec.calendar.day_end,
                        frozenset(DAYS.index(d) for d in spec.calendar.working_days),
                        frozenset(spec.calendar.extra_closures) | frozenset(spec.calendar.bank_holidays or ()),
                        spec.calendar.region, frozenset(spec.calendar.open_days))
    clocks: dict[str, Clock] = {rating: Clock(c.hours, c.working_hours) for rating, c in spec.clocks.items()}
    return Profile(spec.profile, clocks, calendar, spec.at_risk_share)


def load_profiles(alerts: Path, requests: Path) -> tuple[Profile, Profile]:
    """The alert profile and the information-request profile, refused if they count different
    bank holidays: one partnership, one country's calendar."""
    alert_profile, request_profile = load_profile(alerts), load_profile(requests)
    if alert_profile.calendar.region != request_profile.calendar.region:
        raise ProfileError(
            f"{requests} counts {request_profile.calendar.region} bank holidays but {alerts} counts "
            f"{alert_profile.calendar.region}: give MASH_TRIAGE_REQUEST_PROFILE the partnership's region too")
    return alert_profile, request_profile
