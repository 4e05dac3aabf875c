"""Term-frequency adjustment: exact agreement on a rare name or postcode weighs more than on a common
one, within bounds, and never carries twins, siblings or a namesake of another birthday to a link."""

import json
import math
import random
from collections import Counter
from datetime import date

import pytest

from connectors.synth.population import population
from services.enrichment.comparisons import Profile, compare, normalise_name
from services.enrichment.match_cases import load_cases, run_cases
from services.enrichment.match_model import DEFAULT_MODEL, LINK, NEW, REVIEW, Candidate, MatchModel, best_match
from services.enrichment.term_frequencies import FLOOR, MAX_BITS, TermFrequencies, term_frequencies

TF = term_frequencies({"family": {"SMITH": 1_000, "JONES": 800, "OBRIEN": 50, "QUAYLE": 2},
                       "given": {"OLIVIA": 2_000, "OLIVER": 1_500, "HARRY": 900, "ZEBEDEE": 1},
                       "postcode": {"LS61AB": 40, "LS61AD": 3}}, persons=100_000)
MODEL = DEFAULT_MODEL.with_frequencies(TF, "default + term frequencies")
ALIKE = ("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "MISSING")


def child(given: str = "OLIVER", family: str = "SMITH", dob: date = date(2014, 5, 9), postcode: str = "LS61AB",
          sex: str = "M") -> Profile:
    return Profile(given, family, dob, sex, postcode)


def test_an_exact_agreement_on_a_rare_surname_weighs_more_than_on_a_common_one() -> None:
    common = MODEL.score(ALIKE, child(family="SMITH"), child(family="SMITH"))
    rare = MODEL.score(ALIKE, child(family="QUAYLE"), child(family="QUAYLE"))
    assert rare > common
    # SMITH is 1% of children against the model's average exact agreement of 2%: one bit more than
    # average; QUAYLE (2 in 100,000, floored at 1 in 10,000) is log2(0.02 / 0.0001) more, bounded
    assert TF.bits("family", "SMITH", 0.02) == pytest.approx(1.0)
    assert rare - common == pytest.approx(MAX_BITS - 1.0)


def test_a_value_not_in_the_table_is_taken_as_common_as_the_rarest_kept_never_rarer() -> None:
    table_min = min(TF.shares["family"].values())
    unlisted = TF.bits("family", "ABERNETHYQUAYLE", 0.02)
    assert unlisted == TF.bits("family", "QUAYLE", 0.02) == min(MAX_BITS, math.log2(0.02 / max(table_min, FLOOR)))


def test_the_adjustment_is_bounded_either_way_and_floored_for_values_seen_once() -> None:
    assert TF.bits("given", "ZEBEDEE", 0.02) == pytest.approx(min(MAX_BITS, math.log2(0.02 / FLOOR)))
    assert TF.bits("given", "ZEBEDEE", 0.02) <= MAX_BITS
    everyone = term_frequencies({"family": {"SMITH": 100}}, persons=100)
    assert everyone.bits("family", "SMITH", 0.0001) == -MAX_BITS


def test_missing_and_blank_values_stay_neutral_and_only_exact_levels_are_adjusted() -> None:
    assert TF.bits("family", "", 0.02) == 0.0
    assert TF.bits("sex", "M", 0.5) == 0.0
    missing = ("MISSING", "MISSING", "EXACT", "AGREE", "MISSING", "MISSING")
    assert MODEL.score(missing, child(), child()) == DEFAULT_MODEL.score(missing)
    fuzzy = ("FUZZY", "FUZZY", "EXACT", "AGREE", "SECTOR", "MISSING")
    assert MODEL.score(fuzzy, child(), child()) == DEFAULT_MODEL.score(fuzzy)


def test_twins_with_a_rare_surname_are_still_two_children() -> None:
    oliver = child(given="OLIVER", family="QUAYLE", postcode="LS61AD")
    harry = child(given="HARRY", family="QUAYLE", postcode="LS61AD")
    result = best_match(MODEL, harry, [Candidate("p1", (oliver,))])
    assert result.outcome == NEW


def test_a_father_and_son_of_one_rare_name_at_one_home_are_never_linked_however_rare_the_name() -> None:
    """Rarity tells apart children born the same day, not a father from his son: with another birthday
    a rare name gets no boost (a common one still its penalty), and `at_most_review` holds the pair
    to a review whatever the weights."""
    rare = term_frequencies({"given": {"ZEBEDEE": 1}, "family": {"QUAYLE": 1}, "postcode": {"LS61AD": 1}},
                            persons=1_000_000)
    model = DEFAULT_MODEL.with_frequencies(rare, "rare")
    father = Profile("ZEBEDEE", "QUAYLE", date(1980, 1, 2), "M", "LS61AD", address="10 HIGH STREET")
    son = Profile("ZEBEDEE", "QUAYLE", date(2014, 7, 23), "M", "LS61AD", address="10 HIGH STREET")
    vector = compare(son, father)
    assert vector[2] == "DISAGREE"
    assert model.score(vector, son, father) == DEFAULT_MODEL.score(vector)
    assert model.score(compare(son, son), son, son) > DEFAULT_MODEL.score(compare(son, son))  # the same day: boosted
    assert best_match(model, son, [Candidate("father", (father,))]).outcome == REVIEW


def test_a_common_surname_held_for_review_by_the_average_is_linked_on_a_rare_one() -> None:
    """Only an initial for the given name, surname, birthday and sex exact, the postcode in the same
    district only: the average weights hold it for a person; on a rare surname it is strong enough to
    link, on a common one it is still held."""
    known = Profile("OLIVER", "QUAYLE", date(2014, 5, 9), "M", "LS62ZZ")
    event = child(given="O", family="QUAYLE", postcode="LS61AD")
    assert compare(event, known) == ("INITIAL", "EXACT", "EXACT", "AGREE", "DISTRICT", "MISSING")
    assert DEFAULT_MODEL.classify(DEFAULT_MODEL.score(compare(event, known))) == REVIEW
    assert best_match(MODEL, event, [Candidate("p", (known,))]).outcome == LINK
    smith = Profile("OLIVER", "SMITH", date(2014, 5, 9), "M", "LS62ZZ")
    assert best_match(MODEL, child(given="O", postcode="LS61AD"), [Candidate("p", (smith,))]).outcome == REVIEW


def test_a_model_with_frequencies_is_saved_and_read_back_and_has_a_version_of_its_own() -> None:
    again = MatchModel.from_json(json.loads(json.dumps(MODEL.to_json())))
    assert again == MODEL and again.version == MODEL.version != DEFAULT_MODEL.version
    assert "tf" not in DEFAULT_MODEL.to_json()  # a model without them keeps the version it had


def test_shares_keep_the_commonest_values_and_ignore_blanks_and_bad_shares_are_refused() -> None:
    counted = term_frequencies({"family": {"": 500, "A": 3, "B": 9, "C": 1}}, persons=100, keep=2)
    assert counted.shares == {"family": {"B": 0.09, "A": 0.03}}
    with pytest.raises(ValueError, match="share"):
        TermFrequencies({"family": {"A": float("nan")}}, 10)
    with pytest.raises(ValueError, match="only given, family, postcode"):
        TermFrequencies({"dob": {"2014-05-09": 0.1}}, 10)
    with pytest.raises(ValueError, match="no children"):
        term_frequencies({}, persons=0)


def test_every_labelled_case_holds_with_frequencies_counted_from_a_population() -> None:
    children = population(random.Random(5), 20_000, date(2025, 1, 1), 365)
    counts = {"given": Counter(normalise_name(c.given) for c in children),
              "family": Counter(normalise_name(c.family) for c in children),
              "postcode": Counter(c.addresses[0][2].replace(" ", "") for c in children)}
    model = DEFAULT_MODEL.with_frequencies(term_frequencies(counts, len(children)), "counted")
    failed = [r.case.name for r in run_cases(model, load_cases()) if not r.passed]
    assert failed == []
