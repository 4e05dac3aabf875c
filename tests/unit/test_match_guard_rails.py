"""A learned match model is accepted only if it decides the labelled cases as expected and holds
no more events for review than the bound (or the model in use)."""

from datetime import date
from pathlib import Path

import pytest

from services.enrichment.comparisons import Profile
from services.enrichment.guard_rails import Described, judge, review_rate
from services.enrichment.match_cases import load_cases, run_cases
from services.enrichment.match_model import DEFAULT_MODEL, REVIEW, Candidate, MatchModel

CASES = load_cases()
CHILD = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB", address="12 MAIN STREET")


def test_the_shipped_model_decides_every_labelled_case_as_expected() -> None:
    failed = [r.case.name for r in run_cases(DEFAULT_MODEL, CASES) if not r.passed]
    assert not failed and len(CASES) >= 15


def test_a_model_that_learned_a_wholly_different_birthday_is_no_evidence_is_refused() -> None:
    """EM over households can learn that. A father and son of one name at one home are never linked
    whatever the weights (a date of birth that disagrees outright is at most a review); but namesakes
    of other birthdays in the same postcode sector would then all be put to a person, and the review
    rate refuses the model."""
    m = {**DEFAULT_MODEL.m, "dob": {**DEFAULT_MODEL.m["dob"], "DISAGREE": 0.9, "EXACT": 0.06}}
    learned = MatchModel(m, DEFAULT_MODEL.u, source="em")
    father = [r for r in run_cases(learned, CASES) if r.case.name == "a father and son of one name at one home "
              "are not linked"]
    assert father and father[0].passed and father[0].outcome == REVIEW
    namesake = Profile("OLIVER", "OBRIEN", date(2011, 2, 17), "M", "LS61XY")
    verdict = judge(learned, DEFAULT_MODEL, CASES, [described(CHILD, 10, namesake), described(namesake, 10, CHILD)])
    assert verdict.review_rate_in_use == 0.0 and verdict.review_rate == 1.0
    assert not verdict.accepted


def described(profile: Profile, events: int, *others: Profile) -> Described:
    return Described(profile, events, [Candidate(f"p{n}", (o,)) for n, o in enumerate(others)])


MOVED = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "BD39JJ", address="7 HILL VIEW")  # scores a review
STRANGER = Profile("AMELIA", "KHAN", date(2016, 7, 4), "F", "BD71XY")


def test_the_review_rate_counts_events_held_between_the_thresholds() -> None:
    sample = [described(CHILD, 3, MOVED), described(STRANGER, 5), described(MOVED, 2, STRANGER)]
    assert review_rate(DEFAULT_MODEL, sample) == pytest.approx(3 / 10)
    assert review_rate(DEFAULT_MODEL, []) == 0.0


def test_more_reviews_than_the_bound_and_the_model_in_use_are_refused_as_many_accepted() -> None:
    crowded = [described(CHILD, 1, MOVED), described(STRANGER, 9, CHILD)]  # the default holds 10% for review
    eager = MatchModel(DEFAULT_MODEL.m, DEFAULT_MODEL.u, review_threshold=-100.0, source="em")  # holds all
    verdict = judge(eager, DEFAULT_MODEL, [], crowded, max_review_rate=0.02)
    assert verdict.review_rate == 1.0 and verdict.review_rate_in_use == pytest.approx(0.1) and not verdict.accepted
    assert judge(DEFAULT_MODEL, DEFAULT_MODEL, [], crowded, max_review_rate=0.02).accepted  # no worse than in use
    assert judge(eager, DEFAULT_MODEL, [], crowded, max_review_rate=1.0).accepted  # within a wider bound


def test_a_cases_file_with_an_unknown_field_is_refused_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "cases.yaml"
    bad.write_text("cases:\n  - name: x\n    event: {given: A, shoe_size: 3}\n"
                   "    known: [{given: A}]\n    expect: link\n")
    with pytest.raises(ValueError, match=r"cases\.yaml: not a usable file of labelled match cases"):
        load_cases(bad)
