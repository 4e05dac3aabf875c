"""The synthetic feed's RAG truth: the rule set (docs/rag-ground-truth.md) over plain facts, and the
comparison of ratings given with ratings expected."""

from datetime import UTC, datetime, timedelta

import pytest

from connectors.synth.rag_rules import ALL_RULES, RULES, Facts, rate_child, rate_episode
from mash.alert_truth import rating_truth

BABY, TODDLER, CHILD, TEEN = 3, 30, 9 * 12, 15 * 12


@pytest.mark.parametrize(("facts", "rag", "rule"), [
    (Facts(BABY, injury=True, injury_explained=True), "RED", "injury-to-non-mobile-baby"),
    (Facts(CHILD, sexual_abuse=True), "RED", "sexual-abuse"),
    (Facts(TEEN, missing=True, exploitation=True), "RED", "missing-and-exploited"),
    (Facts(CHILD, domestic_abuse=True, child_present=True, injury=True), "RED", "domestic-abuse-child-injured"),
    (Facts(CHILD, injury=True, abuse_disclosed=True), "RED", "injury-disclosed-as-abuse"),
    (Facts(TODDLER, injury=True, injury_explained=False), "AMBER", "unexplained-injury"),
    (Facts(CHILD, abuse_disclosed=True), "AMBER", "abuse-disclosed"),
    (Facts(CHILD, domestic_abuse=True, child_present=True, da_risk="HIGH"), "AMBER", "high-risk-domestic-abuse"),
    (Facts(CHILD, neglect="SIGNIFICANT"), "AMBER", "significant-neglect"),
    (Facts(TEEN, self_harm=True, emotional=True), "AMBER", "self-harm"),
    (Facts(TEEN, exploitation=True), "AMBER", "exploitation-indicators"),
    (Facts(CHILD, domestic_abuse=True, child_present=True, da_risk="MEDIUM"), "GREEN", "domestic-abuse-child-present"),
    (Facts(CHILD, neglect="LOW"), "GREEN", "low-level-neglect-or-emotional"),
    (Facts(CHILD, emotional=True), "GREEN", "low-level-neglect-or-emotional"),
    (Facts(TEEN, missing=True), "GREEN", "missing-episode"),
    (Facts(CHILD, missing_education=True, attendance=True), "GREEN", "missing-education"),
])
def test_each_rule_rates_its_facts(facts: Facts, rag: str, rule: str) -> None:
    assert rate_episode(facts).rag == rag
    assert rate_episode(facts).rules == (rule,)


@pytest.mark.parametrize("facts", [
    Facts(CHILD),
    Facts(CHILD, attendance=True),  # persistent absence alone: the school's and the attendance service's
    Facts(TODDLER, injury=True, injury_explained=True),  # an accident the account explains, in a mobile child
    Facts(CHILD, domestic_abuse=True, child_present=False, da_risk="MEDIUM"),  # not there: no concern for this child
])
def test_universal_needs_raise_no_alert(facts: Facts) -> None:
    assert rate_episode(facts).rag is None


def test_red_is_about_the_facts_not_the_grading() -> None:
    """A high DASH grading with the child present needs a decision today, not a same-day strategy
    discussion; the child hurt in the incident does."""
    high = Facts(CHILD, domestic_abuse=True, child_present=True, da_risk="HIGH")
    assert rate_episode(high).rag == "AMBER"
    assert rate_episode(Facts(CHILD, domestic_abuse=True, child_present=True, injury=True)).rag == "RED"


def test_a_green_concern_about_a_baby_or_a_repeat_is_amber_and_nothing_is_raised_to_red() -> None:
    assert rate_episode(Facts(8, neglect="LOW")).rules == ("concern-about-a-baby", "low-level-neglect-or-emotional")
    assert rate_episode(Facts(CHILD, neglect="LOW"), earlier_concern_within_12_months=True).rag == "AMBER"
    assert rate_episode(Facts(CHILD, neglect="SIGNIFICANT"), earlier_concern_within_12_months=True).rag == "AMBER"
    assert rate_episode(Facts(8, neglect="SIGNIFICANT")).rag == "AMBER"


def test_a_child_is_rated_by_their_most_urgent_episode_and_repeats_count_within_12_months() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    low = Facts(CHILD, neglect="LOW")
    assert rate_child([]).rag is None
    assert rate_child([(day, low)]).rag == "GREEN"
    assert rate_child([(day, low), (day + timedelta(days=200), low)]).rag == "AMBER"
    assert rate_child([(day, low), (day + timedelta(days=400), low)]).rag == "GREEN"
    assert rate_child([(day, Facts(CHILD)), (day + timedelta(days=10), low)]).rag == "GREEN"  # no concern before
    assert rate_child([(day + timedelta(days=9), Facts(CHILD, sexual_abuse=True)), (day, low)]).rag == "RED"


def test_rule_ids_are_unique_and_every_rating_has_rules() -> None:
    ids = [r.id for r in ALL_RULES]
    assert len(ids) == len(set(ids))
    assert {r.rag for r in RULES} == {"RED", "AMBER", "GREEN"}


def test_the_confusion_matrix_counts_children_by_rating_expected_and_given() -> None:
    expected = {1: "RED", 2: "RED", 3: "AMBER", 4: "GREEN", 5: None, 6: None}
    given = {1: "RED", 2: "AMBER", 3: "AMBER", 4: "AMBER", 6: "GREEN"}
    r = rating_truth(expected, given)
    assert (r.count("RED", "RED"), r.count("RED", "AMBER"), r.count("none", "GREEN"), r.count("none", "none")) == \
        (1, 1, 1, 1)
    assert r.rated == 4 and r.accuracy == 0.5 and r.red_recall == 0.5
    assert (r.under_rated, r.over_rated) == (1, 2)
    assert "RED" in r.table().splitlines()[1]
    assert rating_truth({}, {}).accuracy == 1.0 and rating_truth({}, {}).red_recall == 1.0
