"""Adversarial tests of the term-frequency adjustment: hostile model files, bits() edges, and whether
the adjustment can carry twins, siblings, a father and son or a namesake to a link."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from mash.errors import UnusableFile
from mash.models import Base, PersonProfile
from services.enrichment.comparisons import Profile, compare
from services.enrichment.match_model import (
    DEFAULT_MODEL,
    LINK,
    REVIEW,
    Candidate,
    MatchModel,
    best_match,
    load_model,
)
from services.enrichment.term_frequencies import MAX_BITS, TermFrequencies, term_frequencies
from services.enrichment.training_pairs import value_counts

GOOD_TF = {"shares": {"family": {"SMITH": 0.01, "QUAYLE": 0.0001}}, "persons": 10_000}


def _write(tmp_path: Path, tf: Any, raw: str | None = None) -> Path:
    path = tmp_path / "model.json"
    if raw is not None:
        path.write_text(raw)
    else:
        path.write_text(json.dumps({**DEFAULT_MODEL.to_json(), "tf": tf}))
    return path


def _raw_with_tf(tf_text: str) -> str:
    base = json.dumps(DEFAULT_MODEL.to_json())
    return base[:-1] + ', "tf": ' + tf_text + "}"


# --- hostile or malformed model files -----------------------------------------------------------

@pytest.mark.parametrize("tf", [
    [], "shares", 0, False, {}, {"shares": {}}, {"persons": 3},
    {"shares": [], "persons": 1},
    {"shares": {"given": []}, "persons": 1},
    {"shares": {"given": {"A": "lots"}}, "persons": 1},
    {"shares": {"given": {"A": None}}, "persons": 1},
    {"shares": {"given": {"A": [0.1]}}, "persons": 1},
    {"shares": {"given": {"A": -0.1}}, "persons": 1},
    {"shares": {"given": {"A": 0}}, "persons": 1},
    {"shares": {"given": {"A": 1.5}}, "persons": 1},
    {"shares": {"dob": {"2014-05-09": 0.1}}, "persons": 1},
    {"shares": {"nhs": {"1": 0.1}}, "persons": 1},
    {"shares": {"given": {"A": 0.1}}, "persons": -1},
    {"shares": {"given": {"A": 0.1}}, "persons": None},
    {"shares": {"given": {"A": 0.1}}, "persons": "many"},
    {"shares": {"given": {"A": 0.1}}, "persons": [1]},
])
def test_a_malformed_tf_section_is_an_unusable_file(tmp_path: Path, tf: Any) -> None:
    with pytest.raises(UnusableFile):
        load_model(_write(tmp_path, tf))


@pytest.mark.parametrize("tf_text", [
    '{"shares": {"given": {"A": NaN}}, "persons": 1}',
    '{"shares": {"given": {"A": Infinity}}, "persons": 1}',
    '{"shares": {"given": {"A": -Infinity}}, "persons": 1}',
    '{"shares": {"given": {"A": 1e400}}, "persons": 1}',
    '{"shares": {"given": {"A": 0.1}}, "persons": NaN}',
])
def test_nan_and_infinite_shares_are_an_unusable_file(tmp_path: Path, tf_text: str) -> None:
    with pytest.raises(UnusableFile):
        load_model(_write(tmp_path, None, _raw_with_tf(tf_text)))


def test_an_infinite_persons_count_is_an_unusable_file_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(UnusableFile):
        load_model(_write(tmp_path, None, _raw_with_tf('{"shares": {}, "persons": 1e400}')))


def test_a_huge_integer_share_is_an_unusable_file_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(UnusableFile):
        load_model(_write(tmp_path, None, _raw_with_tf('{"shares": {"given": {"A": 1' + "0" * 400 + '}}, '
                                                       '"persons": 1}')))


@pytest.mark.parametrize("tf", ['{"shares": {}, "persons": 1e400}', '{"shares": {"given": {"A": NaN}}, "persons": 1}'],
                         ids=["overflowing persons", "NaN share"])
def test_show_refuses_a_hostile_tf_section_with_a_message(tf: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mash.cli import main
    from mash.settings import get_settings

    path = _write(tmp_path, None, _raw_with_tf(tf))
    monkeypatch.setenv("MASH_MATCH_MODEL", str(path))
    get_settings.cache_clear()
    try:
        assert main(["hub", "match-model", "show"]) == 2
    finally:
        get_settings.cache_clear()
    assert "not a usable match model" in capsys.readouterr().err


def test_tf_null_is_no_adjustment_and_unknown_tf_keys_do_not_change_the_version(tmp_path: Path) -> None:
    assert load_model(_write(tmp_path, None)).tf is None
    plain = load_model(_write(tmp_path, GOOD_TF))
    extra = load_model(_write(tmp_path, {**GOOD_TF, "boost": 99}))
    assert plain.version == extra.version and plain == extra


def test_empty_tables_load_and_adjust_nothing(tmp_path: Path) -> None:
    model = load_model(_write(tmp_path, {"shares": {"given": {}, "family": {}}, "persons": 0}))
    vector = ("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "EXACT")
    assert model.score(vector, Profile("A", "B", date(2014, 1, 1), "F", "LS61AB")) == DEFAULT_MODEL.score(vector)


# --- version ------------------------------------------------------------------------------------

def test_a_tf_model_version_is_stable_across_save_and_load_and_distinct(tmp_path: Path) -> None:
    tf = term_frequencies({"family": {"SMITH": 10, "QUAYLE": 1}}, 100)
    model = DEFAULT_MODEL.with_frequencies(tf, "default")  # same source: only tf differs
    reloaded = load_model(_write(tmp_path, None, json.dumps(model.to_json())))
    assert reloaded.version == model.version != DEFAULT_MODEL.version
    other = DEFAULT_MODEL.with_frequencies(term_frequencies({"family": {"SMITH": 11, "QUAYLE": 1}}, 100), "default")
    assert other.version != model.version


# --- bits() edges -------------------------------------------------------------------------------

def test_bits_are_bounded_for_extreme_u_and_zero_for_blank_values_or_absent_tables() -> None:
    tf = TermFrequencies({"family": {"SMITH": 0.5, "Q": 1e-9}}, 10)
    assert tf.bits("family", "Q", 1.0) == MAX_BITS
    assert tf.bits("family", "SMITH", 1e-300) == -MAX_BITS
    assert tf.bits("family", "", 0.02) == 0.0
    assert tf.bits("given", "SMITH", 0.02) == 0.0
    assert TermFrequencies({"family": {}}, 0).bits("family", "SMITH", 0.02) == 0.0
    assert all(math.isfinite(tf.bits("family", v, u)) for v in ("SMITH", "Q", "X") for u in (1e-12, 0.5, 1.0))


def test_counting_skips_blank_values_and_refuses_no_persons() -> None:
    tf = term_frequencies({"family": {"": 50, "SMITH": 3, "JONES": 0}}, 10)
    assert dict(tf.shares["family"]) == {"SMITH": 0.3}
    with pytest.raises(ValueError):
        term_frequencies({"family": {"SMITH": 3}}, 0)


# --- linkage: twins, siblings, father and son, namesakes ---------------------------------------

RARE = TermFrequencies({"given": {"OLIVER": 0.02}, "family": {"SMITH": 0.01}, "postcode": {"LS61AB": 0.001}}, 10_000)
MODEL = DEFAULT_MODEL.with_frequencies(RARE, "attacked")


def _decide(model: MatchModel, event: Profile, *known: Profile) -> str:
    return best_match(model, event, [Candidate(f"p{i}", (p,)) for i, p in enumerate(known)]).outcome


def test_rare_named_twins_at_one_address_are_never_linked_nor_reviewed() -> None:
    home = {"dob": date(2014, 5, 9), "postcode": "ZZ99ZZ", "address": "1 QUAYLE HOUSE"}
    one = Profile("ZEBEDEE", "ABERNETHYQUAYLE", sex="M", **home)  # type: ignore[arg-type]
    two = Profile("XANTHE", "ABERNETHYQUAYLE", sex="F", **home)  # type: ignore[arg-type]
    assert _decide(MODEL, two, one) not in (LINK, REVIEW)


def test_a_rare_named_father_and_son_with_different_birthdays_are_not_linked() -> None:
    father = Profile("ZEBEDEE", "QUAYLE", date(1990, 3, 4), "M", "ZZ99ZZ", address="1 HIGH STREET")
    son = Profile("ZEBEDEE", "QUAYLE", date(2015, 8, 21), "M", "ZZ99ZZ", address="1 HIGH STREET")
    assert _decide(MODEL, son, father) != LINK


def test_a_rare_namesake_born_the_same_day_in_another_town_is_not_linked() -> None:
    here = Profile("ZEBEDEE", "QUAYLE", date(2014, 5, 9), "M", "LS61AB", address="1 HIGH STREET")
    there = Profile("ZEBEDEE", "QUAYLE", date(2014, 5, 9), "M", "TR181AA", address="7 MILL LANE")
    assert _decide(MODEL, there, here) != LINK


def test_a_rare_named_father_and_son_sharing_day_and_month_are_not_linked_by_term_frequencies() -> None:
    father = Profile("ZEBEDEE", "QUAYLE", date(1990, 3, 4), "M", "ZZ99ZZ")
    son = Profile("ZEBEDEE", "QUAYLE", date(2015, 3, 4), "M", "ZZ99ZZ")
    tf = TermFrequencies({"given": {"ZEBEDEE": 0.0001}, "family": {"QUAYLE": 0.0001},
                          "postcode": {"ZZ99ZZ": 0.0001}}, 10_000)
    assert compare(son, father)[2] == "ONE_PART"
    assert _decide(DEFAULT_MODEL, son, father) == REVIEW
    assert _decide(DEFAULT_MODEL.with_frequencies(tf, "rare"), son, father) != LINK


def test_crossed_over_common_names_weigh_as_common_not_as_rarest() -> None:
    tf = TermFrequencies({"given": {"JOHN": 0.2, "ZEBEDEE": 0.0001}, "family": {"SMITH": 0.2, "QUAYLE": 0.0001}},
                         10_000)
    model = DEFAULT_MODEL.with_frequencies(tf, "common")
    known = Profile("JOHN", "SMITH", date(2014, 5, 9), "M", "LS61AB")
    crossed = Profile("SMITH", "JOHN", date(2014, 5, 9), "M", "LS61AB")
    straight = Profile("JOHN", "SMITH", date(2014, 5, 9), "M", "LS61AB")
    assert compare(crossed, known) == compare(straight, known)
    assert model.score(compare(crossed, known), crossed) == pytest.approx(
        model.score(compare(straight, known), straight))


def test_an_exact_agreement_never_weighs_less_than_a_fuzzy_one() -> None:
    tf = TermFrequencies({"family": {"SINGH": 0.3}}, 10_000)
    model = DEFAULT_MODEL.with_frequencies(tf, "common")
    event = Profile("ARJUN", "SINGH", date(2014, 5, 9), "M", "LS61AB")
    exact = model.score(compare(event, Profile("ARJUN", "SINGH", date(2014, 5, 9), "M", "LS61AB")), event)
    fuzzy = model.score(compare(event, Profile("ARJUN", "SINGHH", date(2014, 5, 9), "M", "LS61AB")), event)
    assert exact >= fuzzy


# --- value_counts -------------------------------------------------------------------------------

def _index() -> Session:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    rows = [("p1", "OLIVER", "SMITH", "LS61AB", "1 HIGH STREET"), ("p1", "OLLIE", "SMITH", "LS61AB", ""),
            ("p1", "OLIVER", "SMITH", "LS61AD", ""), ("p2", "OLIVER", "JONES", "", ""),
            ("p3", "", "", "", "")]
    s = Session(engine)
    with s:
        s.add_all(PersonProfile(person_id=p, given=g, family=f, dob="", sex="", postcode=pc, address=a,
                                first_event_id="e", first_seen_ms=0, events=1) for p, g, f, pc, a in rows)
        s.commit()
    return Session(engine)


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_value_counts_counts_each_person_once_and_skips_blanks() -> None:
    with _index() as s:
        counts, persons = value_counts(s)
    assert persons == 3
    assert counts["given"] == {"OLIVER": 2, "OLLIE": 1}
    assert counts["family"] == {"SMITH": 1, "JONES": 1}
    assert counts["postcode"] == {"LS61AB": 1, "LS61AD": 1}


def test_value_counts_raises_no_deprecation_warning() -> None:
    with _index() as s:
        value_counts(s)
