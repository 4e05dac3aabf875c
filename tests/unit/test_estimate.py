"""EM estimation of the match model from unlabelled comparison patterns."""

import random
from collections import Counter

import pytest

from services.enrichment.comparisons import FIELDS
from services.enrichment.estimate import estimate, u_from_random_pairs
from services.enrichment.match_model import DEFAULT_MODEL, LEVELS, MatchModel

TRUE_M = {
    "given": {"EXACT": 0.8, "NICKNAME": 0.08, "FUZZY": 0.06, "INITIAL": 0.03, "DISAGREE": 0.03},
    "family": {"EXACT": 0.9, "FUZZY": 0.06, "PHONETIC": 0.02, "DISAGREE": 0.02},
    "dob": {"EXACT": 0.9, "SWAPPED": 0.02, "TYPO": 0.03, "YEAR": 0.01, "ONE_PART": 0.02, "DISAGREE": 0.02},
    "sex": {"AGREE": 0.97, "DISAGREE": 0.03},
    "postcode": {"EXACT": 0.7, "SECTOR": 0.05, "TYPO": 0.03, "DISTRICT": 0.07, "DISAGREE": 0.15},
    "address": {"EXACT": 0.7, "FUZZY": 0.1, "TOKENS": 0.05, "DISAGREE": 0.15},
}
TRUE_U = {
    "given": {"EXACT": 0.03, "NICKNAME": 0.005, "FUZZY": 0.01, "INITIAL": 0.06, "DISAGREE": 0.895},
    "family": {"EXACT": 0.3, "FUZZY": 0.01, "PHONETIC": 0.02, "DISAGREE": 0.67},
    "dob": {"EXACT": 0.2, "SWAPPED": 0.001, "TYPO": 0.04, "YEAR": 0.01, "ONE_PART": 0.06, "DISAGREE": 0.689},
    "sex": {"AGREE": 0.5, "DISAGREE": 0.5},
    "postcode": {"EXACT": 0.1, "SECTOR": 0.05, "TYPO": 0.02, "DISTRICT": 0.25, "DISAGREE": 0.58},
    "address": {"EXACT": 0.05, "FUZZY": 0.02, "TOKENS": 0.03, "DISAGREE": 0.9},
}


def sample(rng: random.Random, table: dict[str, dict[str, float]]) -> tuple[str, ...]:
    return tuple(rng.choices(LEVELS[f], [table[f][lvl] for lvl in LEVELS[f]])[0] for f in FIELDS)


def test_em_recovers_the_parameters_of_a_known_mixture_without_labels() -> None:
    rng = random.Random(4)
    patterns = Counter(sample(rng, TRUE_M) for _ in range(20_000)) + \
        Counter(sample(rng, TRUE_U) for _ in range(80_000))
    result = estimate(patterns, DEFAULT_MODEL)
    assert result.match_share == pytest.approx(0.2, abs=0.01)
    for f in FIELDS:
        for level in LEVELS[f]:
            assert result.model.m[f][level] == pytest.approx(TRUE_M[f][level], abs=0.02), (f, level)
            assert result.model.u[f][level] == pytest.approx(TRUE_U[f][level], abs=0.02), (f, level)
    assert result.pairs == 100_000 and result.model.source == "em over 100000 pairs"


def test_an_estimated_model_keeps_the_thresholds_and_gets_its_own_version() -> None:
    rng = random.Random(5)
    patterns = Counter(sample(rng, TRUE_M) for _ in range(2_000)) + Counter(sample(rng, TRUE_U) for _ in range(8_000))
    model = estimate(patterns, DEFAULT_MODEL).model
    assert (model.link_threshold, model.review_threshold) == (DEFAULT_MODEL.link_threshold,
                                                               DEFAULT_MODEL.review_threshold)
    assert model.version != DEFAULT_MODEL.version
    assert MatchModel.from_json(model.to_json()) == model


def test_a_level_never_seen_is_improbable_not_impossible() -> None:
    patterns = Counter({("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "EXACT"): 50,
                        ("DISAGREE", "DISAGREE", "DISAGREE", "DISAGREE", "DISAGREE", "DISAGREE"): 500})
    model = estimate(patterns, DEFAULT_MODEL).model
    assert 0 < model.m["dob"]["SWAPPED"] < 0.001


def test_no_pairs_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        estimate(Counter(), DEFAULT_MODEL)


def test_with_u_from_random_pairs_em_estimates_m_alone() -> None:
    rng = random.Random(6)
    blocked = Counter(sample(rng, TRUE_M) for _ in range(30_000)) + Counter(sample(rng, TRUE_U) for _ in range(5_000))
    u = u_from_random_pairs(Counter(sample(rng, TRUE_U) for _ in range(50_000)))
    result = estimate(blocked, DEFAULT_MODEL, fixed_u=u)
    assert result.model.u == {**u, "address": DEFAULT_MODEL.u["address"]}  # within one postcode: kept
    assert result.match_share == pytest.approx(30 / 35, abs=0.02)
    assert result.model.m["dob"]["EXACT"] == pytest.approx(TRUE_M["dob"]["EXACT"], abs=0.02)
    assert result.model.source.endswith("u from random pairs")


def test_a_model_saved_before_the_address_was_compared_takes_its_default_weights() -> None:
    saved = DEFAULT_MODEL.to_json()
    older = {**saved, "m": {f: v for f, v in saved["m"].items() if f != "address"},
             "u": {f: v for f, v in saved["u"].items() if f != "address"}}
    assert MatchModel.from_json(older) == DEFAULT_MODEL
