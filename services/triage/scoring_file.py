"""RAG scoring rules from YAML, validated at load, and the cases `mash triage test` checks.

Weights and thresholds are the partnership's judgement, so they live in a reviewable file like
the sharing policy; a typo in a field name would silently never match, so every field an
indicator reads is checked against the enriched event's fields.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from services.sharing.fields import EVENT_TYPES, all_fields
from services.triage.scoring import (
    EventIndicator,
    PatternIndicator,
    Prior,
    RepeatIndicator,
    Scored,
    Scoring,
    assess,
    indicators_of,
)

EventType = Literal["police.public_protection_notification", "health.emergency_attendance", "education.concern",
                    "social_care.case_event"]
Agency = Literal["POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE"]
M = TypeVar("M", bound=BaseModel)
DEFAULT_SCORING = Path(__file__).resolve().parents[2] / "policies" / "triage" / "scoring.yaml"


class ScoringError(ValueError):
    """Scoring rules or cases that must not be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorSpec(_Strict):
    agency: Agency
    within_days: Literal[30, 90, 365]
    at_least: int = Field(1, ge=1)


class AcrossSpec(_Strict):
    agencies_at_least: int = Field(ge=2, le=4)
    within_days: int = Field(ge=1, le=365)


class RepeatSpec(_Strict):
    concern_weight: int = Field(ge=1)  # an event is a concern when one of its indicators weighs this much
    apart_days: int = Field(ge=1, le=365)  # further apart than this: another concern, not the same one retold
    within_days: int = Field(ge=1, le=3650)


class IndicatorSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    reason: str = Field(min_length=1, max_length=200)
    weight: int = Field(ge=1, le=1000)
    event_types: tuple[EventType, ...] = ()
    where: dict[str, tuple[str, ...]] = {}
    prior: PriorSpec | None = None
    across_events: AcrossSpec | None = None
    repeated: RepeatSpec | None = None
    family: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9 -]*$", max_length=60)  # counted once: the heaviest
    under_months: StrictInt | None = Field(None, ge=1, le=216)  # the child younger than this at the event
    beside_weight: StrictInt | None = Field(None, ge=1, le=1000)  # only beside a concern of the event this heavy

    @model_validator(mode="after")
    def _one_kind(self) -> IndicatorSpec:
        across = self.across_events or self.repeated
        if across and self.family:
            raise ValueError("a family groups event indicators: drop family from an across_events or repeated one")
        if self.across_events and self.repeated:
            raise ValueError("an indicator is across_events or repeated, not both")
        if across and (self.event_types or self.where or self.prior or self.under_months or self.beside_weight):
            raise ValueError("an across_events or repeated indicator reads no single event: "
                             "drop event_types, where, prior, under_months, beside_weight")
        if not across and not (self.event_types or self.where or self.prior or self.beside_weight):
            raise ValueError("an indicator needs event_types, where, prior, beside_weight, across_events or repeated"
                             " (an age alone is no concern: under_months needs one of them)")
        if self.beside_weight and not (self.under_months or self.event_types or self.where or self.prior):
            raise ValueError("beside_weight names the circumstance that makes a concern graver: add under_months, "
                             "where, event_types or prior")
        if self.repeated and self.repeated.within_days <= self.repeated.apart_days:
            raise ValueError("a repeat's within_days must exceed its apart_days")
        unknown = sorted(set(self.where) - all_fields())
        if unknown:
            raise ValueError(f"unknown field(s) in where: {', '.join(unknown)}")
        return self


class Thresholds(_Strict):
    alert: int = Field(ge=1)
    AMBER: int
    RED: int

    @model_validator(mode="after")
    def _rising(self) -> Thresholds:
        if not self.alert <= self.AMBER <= self.RED:
            raise ValueError("thresholds must rise: alert <= AMBER <= RED")
        return self


class ScoringSpec(_Strict):
    scoring: str = Field(min_length=1)
    description: str = ""
    window_days: int = Field(ge=1, le=365)
    thresholds: Thresholds
    indicators: tuple[IndicatorSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ScoringSpec:
        ids = [i.id for i in self.indicators]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"indicator id used twice: {', '.join(repeated)}")
        return self


def load_scoring(path: Path = DEFAULT_SCORING) -> Scoring:
    raw = _read(path)
    spec = _validate(ScoringSpec, raw, path)
    events, patterns, repeats = [], [], []
    for i in spec.indicators:
        if i.repeated:
            r = i.repeated
            repeats.append(RepeatIndicator(i.id, i.reason, i.weight, r.concern_weight, r.apart_days, r.within_days))
        elif i.across_events:
            patterns.append(PatternIndicator(i.id, i.reason, i.weight, i.across_events.agencies_at_least,
                                             i.across_events.within_days))
        else:
            prior = Prior(i.prior.agency, i.prior.within_days, i.prior.at_least) if i.prior else None
            where = {f: frozenset(v) for f, v in i.where.items()} or None
            events.append(EventIndicator(i.id, i.reason, i.weight, frozenset(i.event_types), where, prior, i.family,
                                         i.under_months, i.beside_weight))
    t = spec.thresholds
    return Scoring(spec.scoring, hashlib.sha256(raw).hexdigest(), spec.window_days, t.alert, t.AMBER, t.RED,
                   tuple(events), tuple(patterns), tuple(repeats))


class CaseEvent(_Strict):
    event_type: EventType
    hours: float = 0  # when it occurred, in hours after the case's first event (on the case's `starts`)
    values: dict[str, Any] = {}  # shared values, nested by section as on mash.shared.v1


class CaseExpectation(_Strict):
    rag: Literal["RED", "AMBER", "GREEN", "none"]
    indicators: tuple[str, ...] | None = None  # exactly these, in any order


class Case(_Strict):
    name: str
    starts: date = date(2026, 1, 5)  # the day of the first event (a child's age is counted to it)
    events: tuple[CaseEvent, ...] = Field(min_length=1)
    expect: CaseExpectation


class CaseFile(_Strict):
    cases: tuple[Case, ...] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    name: str
    problems: tuple[str, ...]
    score: int
    rag: str


def load_cases(path: Path) -> tuple[Case, ...]:
    return _validate(CaseFile, _read(path), path).cases


def run_case(scoring: Scoring, case: Case) -> CaseResult:
    start_ms = int(datetime.combine(case.starts, time(), UTC).timestamp() * 1000)
    at = [start_ms + int(e.hours * 3_600_000) for e in case.events]
    events = [Scored(EVENT_TYPES[e.event_type][0], ms, indicators_of(scoring, e.event_type, e.values, ms))
              for e, ms in zip(case.events, at, strict=True)]
    result = assess(scoring, events)
    rag = result.rag or "none"
    problems = []
    if rag != case.expect.rag:
        problems.append(f"rated {rag} (score {result.score}), expected {case.expect.rag}")
    if case.expect.indicators is not None and set(result.indicators) != set(case.expect.indicators):
        problems.append(f"indicators {sorted(result.indicators)}, expected {sorted(case.expect.indicators)}")
    return CaseResult(case.name, tuple(problems), result.score, rag)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScoringError(f"{path}: cannot read ({exc.strerror})") from None


def _validate(model: type[M], raw: bytes, path: Path) -> M:
    try:
        return model.model_validate(yaml.safe_load(raw))
    except yaml.YAMLError as exc:
        raise ScoringError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ScoringError(f"{path}: {problems}") from None
