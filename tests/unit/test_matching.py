"""Comparison functions, the match model's weights and thresholds, and blocking keys."""

from datetime import date

import pytest

from services.enrichment.blocking import lookup_keys, stored_keys
from services.enrichment.comparisons import (
    Profile,
    compare,
    compare_address,
    compare_dob,
    compare_family,
    compare_given,
    compare_postcode,
    normalise_address,
    normalise_name,
    normalise_postcode,
    profile_of,
)
from services.enrichment.match_model import (
    DEFAULT_M,
    DEFAULT_MODEL,
    LINK,
    NEW,
    REVIEW,
    Candidate,
    MatchModel,
    best_match,
)

CHILD = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB", nhs="9434765919")


def test_names_are_compared_as_letters_only_whatever_the_accents_and_punctuation() -> None:
    assert normalise_name("  O'Brien-Smith ") == "OBRIENSMITH"
    assert normalise_name("Zoë") == "ZOE"
    assert normalise_name("<script>") == "SCRIPT"
    assert normalise_name(None) == ""


def test_postcodes_lose_their_space_and_anything_not_shaped_like_a_postcode_is_unknown() -> None:
    assert normalise_postcode("ls6 1ab") == "LS61AB"
    assert normalise_postcode("SW1A 1AA") == "SW1A1AA"
    assert normalise_postcode("not a postcode") == ""


@pytest.mark.parametrize(("a", "b", "level"), [
    ("OLIVER", "OLIVER", "EXACT"), ("OLIVER", "OLLIE", "NICKNAME"), ("OLIVER", "OLIVRE", "FUZZY"),
    ("OLIVER", "O", "INITIAL"), ("OLIVER", "OSCAR", "DISAGREE"), ("OLIVER", "NOAH", "DISAGREE"),
    ("", "NOAH", "MISSING"), ("AL", "ALFIE", "DISAGREE"),
    ("BABYA", "BABYB", "DISAGREE"), ("TWIN1", "TWIN1", "DISAGREE"),
])
def test_given_name_levels(a: str, b: str, level: str) -> None:
    assert compare_given(a, b) == level


@pytest.mark.parametrize(("a", "b", "level"), [
    ("THOMPSON", "THOMPSON", "EXACT"), ("THOMPSON", "THOMSPON", "FUZZY"), ("SMITH", "SMYTHE", "PHONETIC"),
    ("THOMPSON", "PATEL", "DISAGREE"),
])
def test_family_name_levels(a: str, b: str, level: str) -> None:
    assert compare_family(a, b) == level


@pytest.mark.parametrize(("a", "b", "level"), [
    (date(2014, 5, 9), date(2014, 5, 9), "EXACT"), (date(2014, 5, 9), date(2014, 9, 5), "SWAPPED"),
    (date(2014, 5, 9), date(2014, 5, 19), "TYPO"), (date(2014, 5, 9), date(2014, 5, 6), "TYPO"),
    (date(2014, 5, 12), date(2014, 5, 21), "TYPO"), (date(2014, 5, 9), date(2041, 5, 9), "TYPO"),
    (date(2019, 5, 9), date(2020, 5, 9), "YEAR"), (date(2014, 5, 9), date(2014, 5, 27), "ONE_PART"),
    (date(2014, 5, 9), date(2012, 1, 1), "DISAGREE"),
    (None, date(2012, 1, 1), "MISSING"),
])
def test_date_of_birth_levels(a: date | None, b: date | None, level: str) -> None:
    assert compare_dob(a, b) == level


def test_postcodes_agree_in_part_by_sector_slip_or_district() -> None:
    assert compare_postcode("LS61AB", "LS61ZZ") == "SECTOR"
    assert compare_postcode("LS61AB", "LS61BA") == "SECTOR"
    assert compare_postcode("LS61AB", "LS71AB") == "TYPO"
    assert compare_postcode("LS61AB", "LS62AB") == "TYPO"
    assert compare_postcode("LS61AB", "LS62ZZ") == "DISTRICT"
    assert compare_postcode("LS61AB", "BD71XY") == "DISAGREE"


def test_weights_reward_agreement_penalise_disagreement_and_ignore_missing_values() -> None:
    full = DEFAULT_MODEL.score(("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "EXACT"))
    missing_postcode = DEFAULT_MODEL.score(("EXACT", "EXACT", "EXACT", "AGREE", "MISSING", "EXACT"))
    other_postcode = DEFAULT_MODEL.score(("EXACT", "EXACT", "EXACT", "AGREE", "DISAGREE", "EXACT"))
    assert full > missing_postcode > other_postcode
    assert DEFAULT_MODEL.score(("DISAGREE",) * 6) < 0
    no_address = DEFAULT_MODEL.score(("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "MISSING"))
    assert full > no_address > DEFAULT_MODEL.score(("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "DISAGREE"))


def test_address_lines_compare_as_words_and_another_house_number_is_another_home() -> None:
    same = normalise_address("12 Main St."), normalise_address("12, MAIN STREET")
    assert same[0] == "12 MAIN STREET" and compare_address(*same) == "EXACT"
    assert compare_address(normalise_address("12 Mian Street"), "12 MAIN STREET") == "FUZZY"
    assert compare_address(normalise_address("Flat 3, 12 Main Street"), "12 MAIN STREET") == "TOKENS"
    assert compare_address("ROSE COTTAGE", normalise_address("Rose Cottage, Low Lane")) == "TOKENS"
    assert compare_address("14 MAIN STREET", "12 MAIN STREET") == "DISAGREE"  # the neighbours
    assert compare_address("FLAT 4 12 MAIN STREET", "FLAT 3 12 MAIN STREET") == "DISAGREE"
    assert compare_address("12 MAIN STREET", "3 HIGH ROAD") == "DISAGREE"
    assert compare_address("", "12 MAIN STREET") == "MISSING"


def test_another_name_at_the_childs_home_with_its_birthday_is_held_for_review_never_linked() -> None:
    """The address line agrees with the postcode: counted as if independent, a home and a shared
    birthday would outvote two different names and link. Its weight is its chance within one
    postcode, so the pair is a person's question (a twin under the other parent's surname, or
    the child renamed), not a link; a neighbour's house number leaves it a new person."""
    child = Profile("AMELIA", "SMITH", date(2015, 3, 1), "F", "LS61AB", address="12 MAIN STREET")
    other = Profile("JADE", "OKAFOR", date(2015, 3, 1), "F", "LS61AB", address="12 MAIN STREET")
    assert DEFAULT_MODEL.classify(DEFAULT_MODEL.score(compare(child, other))) == REVIEW
    next_door = Profile("JADE", "OKAFOR", date(2015, 3, 1), "F", "LS61AB", address="14 MAIN STREET")
    assert DEFAULT_MODEL.classify(DEFAULT_MODEL.score(compare(child, next_door))) == NEW


def test_thresholds_give_three_outcomes() -> None:
    model = DEFAULT_MODEL
    assert model.classify(model.link_threshold) == LINK
    assert model.classify(model.link_threshold - 0.01) == REVIEW
    assert model.classify(model.review_threshold - 0.01) == NEW


def test_the_same_child_keyed_slightly_differently_links() -> None:
    variant = Profile("OLLIE", "OBREIN", date(2014, 5, 9), "M", "LS61AB")
    assert best_match(DEFAULT_MODEL, variant, [Candidate("p1", (CHILD,))]).outcome == LINK


HOUSE = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")  # no identifiers: matched on profile


@pytest.mark.parametrize(("who", "other"), [
    ("same-sex twin, another name", Profile("HARRY", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")),
    ("same-sex twin, same initial", Profile("OSCAR", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")),
    ("twin, surname slipped", Profile("HARRY", "OBREIN", date(2014, 5, 9), "M", "LS61AB")),
    ("twin at an old address", Profile("HARRY", "OBRIEN", date(2014, 5, 9), "M", "LS62ZZ")),
    ("brother born a year later, same day", Profile("JACOB", "OBRIEN", date(2015, 5, 9), "M", "LS61AB")),
    ("brother born eleven months later", Profile("JACOB", "OBRIEN", date(2015, 4, 9), "M", "LS61AB")),
])
def test_twins_and_siblings_close_in_age_are_neither_linked_nor_held_for_review(who: str, other: Profile) -> None:
    """Oliver and Harry O'Brien, same birthday, same house: 23.3 points of agreement linked them
    before (given DISAGREE -5.5 outweighed by family, date of birth, sex and postcode)."""
    result = best_match(DEFAULT_MODEL, other, [Candidate("oliver", (HOUSE,))])
    assert result.outcome == NEW, (who, result)
    assert result.score is not None and result.score < DEFAULT_MODEL.review_threshold


def test_a_cousin_at_the_same_address_is_not_linked() -> None:
    cousin = Profile("OLIVER", "PATEL", date(2014, 11, 20), "M", "LS61AB")  # named after the same grandfather
    assert best_match(DEFAULT_MODEL, cousin, [Candidate("oliver", (HOUSE,))]).outcome == NEW


def test_a_twin_does_not_stand_in_the_way_of_the_childs_own_record() -> None:
    """Harry's next record finds Harry, with his twin among the candidates: linked, not held as
    ambiguous between the two."""
    harry = Profile("HARRY", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    again = Profile("HARRY", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    result = best_match(DEFAULT_MODEL, again, [Candidate("oliver", (HOUSE,)), Candidate("harry", (harry,))])
    assert (result.outcome, result.person_id) == (LINK, "harry")


@pytest.mark.parametrize("name", ["OLLIE", "OLIVRE", "O"])
def test_the_same_child_under_a_short_form_a_slip_or_an_initial_still_links(name: str) -> None:
    same = Profile(name, "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    assert best_match(DEFAULT_MODEL, same, [Candidate("oliver", (HOUSE,))]).outcome == LINK


def test_a_date_of_birth_keyed_with_one_digit_wrong_still_links_on_names_and_postcode() -> None:
    """Given, family and postcode exact with a one-digit slip in the date and no sex recorded: the
    slip scored 0 before, and the rest alone fell short of the link threshold."""
    slipped = Profile("OLIVER", "OBRIEN", date(2014, 5, 19), "", "LS61AB")
    assert best_match(DEFAULT_MODEL, slipped, [Candidate("oliver", (HOUSE,))]).outcome == LINK


def test_given_and_family_names_keyed_into_each_others_boxes_still_link() -> None:
    crossed = Profile("OBRIEN", "OLIVER", date(2014, 5, 9), "M", "LS61AB")
    assert compare(crossed, HOUSE)[:2] == ("EXACT", "EXACT")
    assert best_match(DEFAULT_MODEL, crossed, [Candidate("oliver", (HOUSE,))]).outcome == LINK
    sister = Profile("OBRIEN", "AMELIA", date(2014, 5, 9), "F", "LS61AB")  # half crossed is no agreement
    assert compare(sister, HOUSE)[:2] == ("DISAGREE", "DISAGREE")


def test_a_sibling_at_the_same_address_is_not_linked() -> None:
    sister = Profile("AMELIA", "OBRIEN", date(2016, 11, 2), "F", "LS61AB")
    assert best_match(DEFAULT_MODEL, sister, [Candidate("p1", (CHILD,))]).outcome == NEW


def test_a_different_valid_nhs_number_vetoes_the_match_however_alike_the_rest() -> None:
    twin_record = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB", nhs="4010232137")
    result = best_match(DEFAULT_MODEL, twin_record, [Candidate("p1", (CHILD,))])
    assert (result.outcome, result.person_id) == (NEW, None)


def test_two_near_identical_candidates_are_ambiguous_and_held_for_review() -> None:
    event = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    other = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB", nhs="4010232137")
    result = best_match(DEFAULT_MODEL, event, [Candidate("p1", (CHILD,)), Candidate("p2", (other,))])
    assert result.outcome == REVIEW


def test_the_best_of_a_persons_profiles_counts_so_an_old_address_still_matches() -> None:
    moved = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS99ZZ")
    event = Profile("OLIVER", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    assert best_match(DEFAULT_MODEL, event, [Candidate("p1", (moved, CHILD))]).evidence["postcode"] == "EXACT"


def test_a_model_missing_a_level_or_with_impossible_probabilities_is_refused() -> None:
    broken = {**DEFAULT_M, "sex": {"AGREE": 0.98}}
    with pytest.raises(ValueError, match=r"m\[sex\]"):
        MatchModel(broken, DEFAULT_MODEL.u)
    with pytest.raises(ValueError, match="strictly between"):
        MatchModel({**DEFAULT_M, "sex": {"AGREE": 1.0, "DISAGREE": 0.0}}, DEFAULT_MODEL.u)


def test_the_model_version_changes_with_its_parameters_and_survives_a_round_trip() -> None:
    stricter = MatchModel(DEFAULT_MODEL.m, DEFAULT_MODEL.u, link_threshold=25.0)
    assert stricter.version != DEFAULT_MODEL.version
    assert MatchModel.from_json(stricter.to_json()).version == stricter.version


def test_each_tolerated_slip_still_shares_a_blocking_key_with_the_truth() -> None:
    truth = stored_keys(CHILD)
    slips = [
        Profile("OLIVER", "BRYAN", date(2014, 5, 9), "M", "LS61AB"),  # surname keyed differently
        Profile("OLIVER", "OBRIEN", date(2014, 9, 5), "M", "M11AA"),  # day and month swapped, elsewhere
        Profile("OLIVER", "OBRIEN", date(2014, 5, 19), "M", "LS61AB"),  # a mistyped day
    ]
    for slip in slips:
        assert lookup_keys(slip) & truth, slip


def test_profile_of_an_envelope_subject() -> None:
    subject = {"given_name": "Ollie", "family_name": "O'Brien", "date_of_birth": date(2014, 5, 9),
               "sex": "MALE", "postcode": "ls6 1ab"}
    assert profile_of(subject) == Profile("OLLIE", "OBRIEN", date(2014, 5, 9), "M", "LS61AB")
    assert compare(profile_of(subject), CHILD)[0] == "NICKNAME"
