"""Indicator families attacked, over the shipped scoring (policies/triage/scoring.yaml), whose
early-help family sits beside patterns and the repeat:

- the sliding window must find exactly the window a fresh `assess` of each window finds, whichever
  event must be in it (`holding`), with families, patterns and repeats together;
- correlation re-rates an open alert as events arrive: its score and rating never go down, and an
  alert does not depend on the order the events arrived in;
- what a role sees of a score (`score_seen`) depends only on its own view: two hubs whose events
  differ only in values withheld from the role show it the same thing (no "+0: early help counts
  once" and no number revealing that a heavier family member sits in something withheld).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.triage.correlation import EventFacts, PersonState, Rules, correlate
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring import Scored, assess, counted_weights, indicators_of
from services.triage.scoring_file import load_scoring
from services.triage.windows import first_scoring_window
from services.triage_app.views import score_seen, seen_event

DAY = 86_400_000
SCORING = load_scoring()
RULES = Rules(SCORING, load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml"))
EARLY_HELP = tuple(i.id for i in SCORING.events if i.family == "early help")
OTHERS = ("referral-level-3", "child-at-risk-victim", "attendance-drop", "emergency-attendance-injury-pattern",
          "protection-plan-started")
AGENCIES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
INDICATORS = st.lists(st.sampled_from(EARLY_HELP + OTHERS), max_size=3, unique=True)


def test_the_shipped_scoring_has_an_early_help_family_to_attack() -> None:
    assert len(EARLY_HELP) >= 5
    weights = {SCORING.weight(i) for i in EARLY_HELP}
    assert weights == {30, 40}


def test_the_counted_weights_add_up_to_the_score_and_one_early_help_concern_counts() -> None:
    found = [*EARLY_HELP, "attendance-drop"]
    counted = counted_weights(SCORING, found)
    assert counted["social-care-referral"] == 40
    assert sum(counted[i] for i in EARLY_HELP) == 40
    rated = assess(SCORING, [Scored("EDUCATION", 0, tuple(found))])
    assert rated.score == 40 + 10
    assert sum(1 for r in rated.reasons if r.endswith("(+0: early help counts once)")) == len(EARLY_HELP) - 1


# -- the sliding window against a fresh assessment of each window -------------------------------

def _tried_one_by_one(events: list[Scored], holding: set[int], span: int) -> list[int] | None:
    order = sorted(range(len(events)), key=lambda i: events[i].occurred_ms)
    for start in sorted({events[i].occurred_ms for i in order}):
        window = [i for i in order if start <= events[i].occurred_ms <= start + span]
        if holding & set(window) and assess(SCORING, [events[i] for i in window]).rag is not None:
            return window
    return None


EVENTS = st.lists(st.tuples(st.sampled_from(AGENCIES), st.integers(0, 400), INDICATORS), min_size=1, max_size=14)


@settings(max_examples=400, deadline=None)
@given(rows=EVENTS, data=st.data())
def test_the_sliding_window_finds_what_assessing_each_window_finds(rows: list[tuple[str, int, list[str]]],
                                                                   data: st.DataObject) -> None:
    events = [Scored(agency, day * DAY // 2, tuple(found)) for agency, day, found in rows]
    holding = data.draw(st.sets(st.integers(0, len(events) - 1), min_size=1))
    span = data.draw(st.sampled_from([1, 7, 30, 200])) * DAY
    ids = list(range(len(events)))
    found = first_scoring_window(SCORING, ids, lambda i: events[i], span, lambda i: i in holding)
    expected = _tried_one_by_one(events, holding, span)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert sorted(found) == sorted(expected)
        assert assess(SCORING, [events[i] for i in found]).score == assess(
            SCORING, [events[i] for i in expected]).score


# -- correlation: re-rated as events arrive, never lowered ---------------------------------------

RANK = {"GREEN": 1, "AMBER": 2, "RED": 3}
ARRIVALS = st.lists(st.tuples(st.sampled_from(AGENCIES), st.integers(0, 60), INDICATORS), min_size=1, max_size=9)


def _arrive(events: Sequence[EventFacts]) -> list[PersonState]:
    state, states = PersonState(), []
    for n, event in enumerate(events):
        state, _ = correlate(state, "child", event, RULES, now_ms=n)
        states.append(state)
    return states


@settings(max_examples=250, deadline=None)
@given(rows=ARRIVALS, data=st.data())
def test_an_open_alert_is_never_rated_or_scored_lower_as_family_members_arrive(
        rows: list[tuple[str, int, list[str]]], data: st.DataObject) -> None:
    events = [EventFacts(f"e{n}", agency, day * DAY, tuple(found)) for n, (agency, day, found) in enumerate(rows)]
    order = data.draw(st.permutations(events))
    states = _arrive(order)
    previous = None
    for state in states:
        alert = state.alert
        if alert is not None and previous is not None and previous.alert_id == alert.alert_id:
            assert alert.score >= previous.score
            assert RANK[alert.rag] >= RANK[previous.rag]
        previous = alert
    final, in_order = states[-1].alert, _arrive(sorted(events, key=lambda e: e.occurred_ms))[-1].alert
    assert (final is None) == (in_order is None)
    if final is not None and in_order is not None:
        assert (final.rag, final.score, set(final.event_ids)) == (in_order.rag, in_order.score,
                                                                   set(in_order.event_ids))
        # each point of the score has one reason: the counted reasons add up to the score
        added = [int(r.rsplit("(+", 1)[1].split(")")[0].split(":")[0]) for r in final.reasons if "(+" in r]
        assert sum(added) == final.score


# -- what a role sees: only a function of its own view --------------------------------------------

# Events as the hub holds them (nested values), drawn so that early-help members of different
# weights sit in events a role may or may not see.
POLICE = {"incident_type": ["DOMESTIC_ABUSE", "MISSING_EPISODE", "CHILD_AT_RISK"], "children_present": [True, False],
          "child_role": ["PRESENT", "VICTIM"], "risk_grading": ["STANDARD", "MEDIUM"]}
HEALTH = {"safeguarding_concern": [True, False], "injury_pattern_concern": [False, True]}
SCHOOL = {"concern_kind": ["SAFEGUARDING_CONCERN", "CHILD_MISSING_EDUCATION", "ATTENDANCE_DROP"],
          "safeguarding_category": ["NEGLECT", "DOMESTIC_ABUSE"]}
SOCIAL = {"kind": ["REFERRAL", "OTHER"], "level_of_need": [None, 2, 3], "referral_category": [None, "NEGLECT"]}
TYPES = {"police.public_protection_notification": ("POLICE", POLICE), "health.emergency_attendance": ("HEALTH", HEALTH),
         "education.concern": ("EDUCATION", SCHOOL), "social_care.case_event": ("SOCIAL_CARE", SOCIAL)}


@st.composite
def hub_event(draw: st.DrawFn) -> tuple[str, str, int, dict[str, Any], dict[str, Any], frozenset[str]]:
    """An event, a second version of its values differing only in fields the role does not see, and
    the role's view (the dotted names it may see)."""
    event_type = draw(st.sampled_from(sorted(TYPES)))
    agency, choices = TYPES[event_type]
    payload = {k: draw(st.sampled_from(v)) for k, v in choices.items()}
    allowed = draw(st.sets(st.sampled_from([f"payload.{k}" for k in choices])))
    other = {k: (v if f"payload.{k}" in allowed else draw(st.sampled_from(choices[k]))) for k, v in payload.items()}
    when = draw(st.integers(0, 20)) * DAY
    return event_type, agency, when, {"payload": payload}, {"payload": other}, frozenset(allowed)


def _hub_alert(events: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> tuple[int, tuple[str, ...]]:
    """The hub's score and indicators of the events, as correlation would rate them (every value)."""
    rated = assess(SCORING, [Scored(agency, when, indicators_of(SCORING, t, values))
                             for t, agency, when, values in events])
    return rated.score, rated.indicators


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hub_event(), min_size=1, max_size=5))
def test_what_a_role_sees_of_a_score_depends_only_on_its_own_view(events: list[Any]) -> None:
    one = [(t, a, w, v) for t, a, w, v, _, _ in events]
    two = [(t, a, w, o) for t, a, w, _, o, _ in events]
    seen = []
    for world in (one, two):
        score, indicators = _hub_alert(world)
        views = [seen_event(t, a, w, v, sorted(allowed)) for (t, a, w, v), (*_, allowed) in zip(world, events,
                                                                                                strict=True)]
        seen.append(score_seen(SCORING, score, indicators, views))
    assert seen[0] == seen[1]
    shown = seen[0]
    if shown.score is not None:  # a number shown is what the role's own reasons add up to
        added = [int(r.rsplit("(+", 1)[1].split(")")[0].split(":")[0]) for r in shown.reasons]
        assert sum(added) == shown.score
