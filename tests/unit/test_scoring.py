from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from connectors.registry import build_connector
from mash.codec import Codec
from mash.models import Base
from mash.settings import PROJECT_ROOT
from mash.topics import ENRICHED, SHARED, inbound
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import Enricher
from services.messages import InMessage
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.sharing.vocabulary import CONSENT_STATES, ROLES
from services.triage.scoring import (
    Assessment,
    EventIndicator,
    PatternIndicator,
    RepeatIndicator,
    Scored,
    Scoring,
    _pattern_found,
    assess,
    indicators_of,
    repeat_found,
)
from services.triage.scoring_file import DEFAULT_SCORING, ScoringError, load_cases, load_scoring, run_case
from services.triage.windows import first_scoring_window
from tests.unit.test_correlation import MECHANICS_SCORING

SCORING = load_scoring()  # the shipped, calibrated scoring
MECHANICS = load_scoring(MECHANICS_SCORING)  # frozen weights for tests of how scoring works (its header says why)
DEFAULT_POLICY = PROJECT_ROOT / "policies" / "sharing" / "default.yaml"


def test_every_shipped_scoring_case_passes() -> None:
    cases = load_cases(DEFAULT_SCORING.with_name("scoring.cases.yaml"))
    failures = [(c.name, run_case(SCORING, c).problems) for c in cases if run_case(SCORING, c).problems]
    assert len(cases) >= 10 and failures == []


def test_a_case_that_expects_the_wrong_rating_fails_with_what_it_got(tmp_path: Path) -> None:
    cases = tmp_path / "c.yaml"
    cases.write_text("cases:\n  - name: wrong\n    events: [{event_type: education.concern, "
                     "values: {payload: {concern_kind: ATTENDANCE_DROP}}}]\n    expect: {rag: RED}\n")
    (case,) = load_cases(cases)
    assert run_case(SCORING, case).problems == ("rated none (score 10), expected RED",)


def test_an_indicator_on_a_field_that_does_not_exist_is_refused_at_load(tmp_path: Path) -> None:
    text = DEFAULT_SCORING.read_text().replace("payload.risk_grading", "payload.risk_grade")
    bad = tmp_path / "s.yaml"
    bad.write_text(text)
    with pytest.raises(ScoringError, match=r"s.yaml: .*unknown field\(s\) in where: payload.risk_grade"):
        load_scoring(bad)


@pytest.mark.parametrize(("replace", "message"), [
    ("thresholds: {alert: 30, AMBER: 50, RED: 80}", "thresholds must rise"),
    ("weight: 25", "weight"),
    ("id: looked-after", "indicator id used twice"),
])
def test_bad_scoring_files_are_refused_with_the_reason(tmp_path: Path, replace: str, message: str) -> None:
    swaps = {"thresholds: {alert: 30, AMBER: 50, RED: 80}": "thresholds: {alert: 30, AMBER: 90, RED: 80}",
             "weight: 25": "weight: -3", "id: looked-after": "id: attendance-drop"}
    bad = tmp_path / "s.yaml"
    bad.write_text(MECHANICS_SCORING.read_text().replace(replace, swaps[replace], 1))
    with pytest.raises(ScoringError, match=message):
        load_scoring(bad)


WITHHELD_FROM_EVERYONE = f"""
  - id: injury-pattern-withheld-from-everyone
    description: the injury pattern flag leaves the hub for no role
    when:
      roles: [{", ".join(ROLES)}]
      consent: [{", ".join(CONSENT_STATES)}]
    decision: withhold
    fields: [payload.injury_pattern_concern]
    lawful_basis: [UK_GDPR_5_1_C]
    purpose: the test
    necessity: the test
"""


def rated_through_sharing(policy_text: str, tmp_path: Path) -> Assessment:
    """An attendance with an injury pattern of concern (and no safeguarding flag) through the health
    connector's mapping, enrichment, the sharing stage under this policy, and triage's scoring of
    the values the stage let out (as the triage stage reads them)."""
    codec = Codec()
    tmp_path.mkdir()
    connector = build_connector("health", tmp_path / "connector")
    sample = next(iter(connector.sample_records(connector.sample)))
    assert sample.fields is not None
    fields = {**sample.fields, "safeguarding_concern": False, "injury_pattern_concern": True}
    event = connector.to_event(connector.map(fields))
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    arriving = [InMessage(inbound("health"), 0, 0, b"k", codec.encode(event, connector.schema))]
    enriched = [InMessage(ENRICHED, 0, n, m.key, m.value)
                for n, m in enumerate(Enricher(codec, PersonIndex(sessions)).process(arriving))]
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text)
    out = Sharer(codec, sessions, PolicySource(policy)).process(enriched)
    engine.dispose()
    (shared,) = [codec.decode(m.value)[0] for m in out if m.topic == SHARED]
    found = indicators_of(SCORING, shared["event_type"], orjson.loads(shared["values"] or "{}"))
    return assess(SCORING, [Scored(shared["source_agency"], 0, found)])


def test_a_field_withheld_from_every_role_cannot_raise_a_rating(tmp_path: Path) -> None:
    shared = rated_through_sharing(DEFAULT_POLICY.read_text(), tmp_path / "shared")
    assert shared.indicators == ("emergency-attendance-injury-pattern",) and shared.rag is not None  # it counts
    withheld = rated_through_sharing(DEFAULT_POLICY.read_text() + WITHHELD_FROM_EVERYONE, tmp_path / "withheld")
    assert (withheld.indicators, withheld.score, withheld.rag) == ((), 0, None)


def test_reasons_carry_each_indicators_weight_highest_first() -> None:
    result = assess(MECHANICS, [Scored("POLICE", 0, ("domestic-abuse-children-present",)),
                              Scored("HEALTH", 3_600_000, ())])
    assert result.rag == "AMBER" and result.score == 75
    assert result.reasons == ("two or more agencies raised concerns about this child within 7 days (+50)",
                              "domestic abuse incident with children present (+25)")


def _pattern_found_by_every_start(pattern: PatternIndicator, events: list[Scored]) -> bool:
    """The definition, checked from every event in turn (quadratic): what the sliding window must agree with."""
    span = pattern.within_days * 86_400_000
    return any(len({e.agency for e in events if 0 <= e.occurred_ms - first.occurred_ms <= span}) >= pattern.at_least
               for first in events)


@given(st.lists(st.tuples(st.sampled_from(["POLICE", "HEALTH", "SCHOOL", "SOCIAL_CARE"]),
                          st.integers(0, 40 * 86_400_000)), max_size=30),
       st.integers(1, 10), st.integers(1, 4))
def test_a_cross_agency_pattern_is_found_exactly_when_enough_agencies_fall_within_its_window(
        events: list[tuple[str, int]], within_days: int, at_least: int) -> None:
    pattern = PatternIndicator("p", "reason", 10, at_least, within_days)
    scored = [Scored(agency, when, ()) for agency, when in events]
    assert _pattern_found(pattern, scored) == _pattern_found_by_every_start(pattern, scored)


# -- a further concern within 12 months: the repeat indicator --------------------------------------------------

DAY_MS = 86_400_000
REPEAT = RepeatIndicator("again", "a further concern", 60, concern_weight=30, apart_days=7, within_days=365)
WITH_REPEAT = Scoring("t", "v", 30, 30, 90, 300,
                      (EventIndicator("concern", "a concern", 30, frozenset({"education.concern"})),
                       EventIndicator("minor", "a minor one", 10, frozenset({"education.concern"}))),
                      (), (REPEAT,))


def _repeat_by_every_pair(events: list[Scored]) -> bool:
    """The definition, pair by pair (quadratic): what the one-pass search must agree with."""
    concerns = [e.occurred_ms for e in events if "concern" in e.indicators]
    return any(7 * DAY_MS < later - earlier <= 365 * DAY_MS for earlier in concerns for later in concerns)


def test_a_further_concern_months_later_is_a_repeat_and_one_told_twice_within_days_is_not() -> None:
    concern = ("concern",)
    assert repeat_found(WITH_REPEAT, REPEAT, [Scored("POLICE", 0, concern), Scored("EDUCATION", 60 * DAY_MS, concern)])
    assert not repeat_found(WITH_REPEAT, REPEAT, [Scored("POLICE", 0, concern), Scored("HEALTH", 7 * DAY_MS, concern)])
    far = [Scored("POLICE", 0, concern), Scored("HEALTH", 366 * DAY_MS, concern)]
    assert not repeat_found(WITH_REPEAT, REPEAT, far)
    assert not repeat_found(WITH_REPEAT, REPEAT, [Scored("EDUCATION", 0, ("minor",)),
                                                  Scored("EDUCATION", 60 * DAY_MS, ("minor",))])  # not concerns
    rated = assess(WITH_REPEAT, [Scored("POLICE", 0, concern), Scored("EDUCATION", 60 * DAY_MS, concern)])
    assert (rated.rag, rated.score, rated.indicators) == ("AMBER", 90, ("again", "concern"))


EVENTS = st.lists(st.tuples(st.sampled_from([(), ("concern",), ("minor",), ("concern", "minor")]),
                            st.integers(0, 800 * DAY_MS)), max_size=25)


@given(EVENTS)
def test_a_repeat_is_found_exactly_when_two_concerns_are_more_than_apart_and_within_reach(
        events: list[tuple[tuple[str, ...], int]]) -> None:
    scored = [Scored("EDUCATION", when, found) for found, when in events]
    assert repeat_found(WITH_REPEAT, REPEAT, scored) == _repeat_by_every_pair(scored)


@given(EVENTS, st.sampled_from([30, 200, 400]))
def test_the_first_scoring_window_with_repeats_is_the_first_a_fresh_assessment_finds(
        events: list[tuple[tuple[str, ...], int]], window_days: int) -> None:
    """Slid windows count repeats in and out; each window tried afresh (quadratic) must agree, also
    when the window is longer than the repeat's reach."""
    scoring = Scoring("t", "v", window_days, 40, 90, 300, WITH_REPEAT.events, (), (REPEAT,))
    scored = sorted((Scored("EDUCATION", when, found) for found, when in events), key=lambda e: e.occurred_ms)
    span = window_days * DAY_MS
    expected = next(([e for e in scored if first.occurred_ms <= e.occurred_ms <= first.occurred_ms + span]
                     for first in scored
                     if assess(scoring, [e for e in scored
                                         if first.occurred_ms <= e.occurred_ms <= first.occurred_ms + span]).rag),
                    None)
    found = first_scoring_window(scoring, scored, lambda e: e, span, lambda e: True)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert [e.occurred_ms for e in found] == [e.occurred_ms for e in expected]


@pytest.mark.parametrize(("repeated", "message"), [
    ("repeated: {concern_weight: 30, apart_days: 7, within_days: 7}", "within_days must exceed its apart_days"),
    ("event_types: [education.concern]\n    repeated: {concern_weight: 30, apart_days: 7, within_days: 365}",
     "reads no single event"),
    ("repeated: {concern_weight: 30, apart_days: 7, within_days: 365}\n"
     "    across_events: {agencies_at_least: 2, within_days: 7}", "not both"),
])
def test_a_repeat_that_cannot_mean_anything_is_refused(tmp_path: Path, repeated: str, message: str) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(MECHANICS_SCORING.read_text() + f"  - id: again\n    reason: r\n    weight: 60\n    {repeated}\n")
    with pytest.raises(ScoringError, match=message):
        load_scoring(bad)
