"""The MASH enquiry's decisions as plain functions: the catalogue, consent, request clocks, returns,
the threshold decision and what a request shows an agency. No database, no broker."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.enquiry.catalogue import CatalogueError, load_catalogue
from services.enquiry.consent import GIVEN, NOT_SOUGHT_RISK, REFUSED, ConsentRefused, consent_decision
from services.enquiry.request_clock import (
    ACKNOWLEDGED,
    DECLINED,
    ESCALATE,
    HELD,
    NIL,
    OVERDUE,
    REMIND,
    RISK,
    SENT,
    RequestTimes,
    answered_on_time,
    chasing,
    due,
    state,
)
from services.enquiry.request_view import StandingEvent, identifies, identity_for
from services.enquiry.returns import ReturnRefused, checked_return
from services.enquiry.threshold import DecisionRefused, threshold_decision
from services.triage.profiles import PROFILES_DIR, load_profile

CATALOGUE = load_catalogue()
STANDARD = load_profile(PROFILES_DIR / "standard-4h-24h-72h.yaml")
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PROMPTS = CATALOGUE.agencies["police"].prompts


def test_the_shipped_catalogue_names_five_agencies_four_levels_and_the_census_factor_codes() -> None:
    assert set(CATALOGUE.agencies) == {"police", "health", "education", "childrens_social_care", "adults_social_care"}
    assert list(CATALOGUE.levels) == [1, 2, 3, 4]
    assert {"1A", "3B", "16A", "19C", "20", "21", "24A"} <= set(CATALOGUE.factors)
    assert CATALOGUE.agencies["health"].sharing_role == "mash_health_practitioner"


@pytest.mark.parametrize(("agencies", "problem"), [
    ("agencies:\n  Bad-Key: {label: X, sharing_role: r, returns_as: police, prompts: [{id: a, text: t}]}\n",
     "lower-case"),
    ("agencies:\n  probation: {label: X, sharing_role: r, prompts: [{id: a, text: t}]}\n", "returns_as"),
    ("agencies:\n  police: {label: X, sharing_role: r, returns_as: police,"
     " prompts: [{id: a, text: t}, {id: a, text: u}]}\n",
     "used twice"),
    ("agencies:\n  police: {label: X, sharing_role: r, prompts: []}\n", "prompts"),
    ("agencies: [\n", "not valid YAML"),
])
def test_a_catalogue_that_must_not_be_used_is_refused_naming_the_file(tmp_path: Path, agencies: str,
                                                                      problem: str) -> None:
    (tmp_path / "agencies.yaml").write_text(agencies)
    (tmp_path / "outcomes.yaml").write_text("levels: {1: a}\noutcomes: {NFA: n}\nfactors: {21: none}\n")
    with pytest.raises(CatalogueError, match=problem) as raised:
        load_catalogue(tmp_path)
    assert "agencies.yaml" in str(raised.value)


def test_not_seeking_consent_needs_a_manager_and_a_reason() -> None:
    with pytest.raises(ConsentRefused, match="manager"):
        consent_decision(NOT_SOUGHT_RISK, "the father would flee with the child", "alice", False)
    with pytest.raises(ConsentRefused, match="why"):
        consent_decision(NOT_SOUGHT_RISK, "  ", "mo", True)
    decided = consent_decision(NOT_SOUGHT_RISK, "the father would flee with the child", "mo", True)
    assert decided.authorised_by == "mo"


def test_refused_consent_needs_the_reason_sharing_goes_ahead_and_given_needs_none() -> None:
    with pytest.raises(ConsentRefused, match="refused"):
        consent_decision(REFUSED, "", "alice", False)
    assert consent_decision(GIVEN, "", "alice", False).authorised_by is None
    with pytest.raises(ConsentRefused, match="choose"):
        consent_decision("MAYBE", "", "alice", False)


def test_a_red_request_is_due_in_four_hours_around_the_clock_and_at_risk_at_three() -> None:
    friday_night = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    at_risk, due_at = due(STANDARD, "RED", friday_night)
    assert (at_risk - friday_night, due_at - friday_night) == (timedelta(hours=3), timedelta(hours=4))


def test_a_request_is_sent_then_acknowledged_then_at_risk_then_overdue_until_it_is_answered() -> None:
    at_risk, due_at = due(STANDARD, "RED", MONDAY_9)
    times = RequestTimes("RED", MONDAY_9, due_at)
    assert state(STANDARD, times, MONDAY_9 + timedelta(minutes=5)) == SENT
    acknowledged = RequestTimes("RED", MONDAY_9, due_at, acknowledged_at=MONDAY_9 + timedelta(minutes=10))
    assert state(STANDARD, acknowledged, MONDAY_9 + timedelta(hours=1)) == ACKNOWLEDGED
    assert state(STANDARD, acknowledged, at_risk) == RISK
    assert state(STANDARD, acknowledged, due_at) == OVERDUE
    late = RequestTimes("RED", MONDAY_9, due_at, answered_at=due_at + timedelta(hours=1), answer=NIL)
    assert state(STANDARD, late, due_at + timedelta(days=3)) == NIL
    assert answered_on_time(late) is False
    assert answered_on_time(times) is None


def test_chasing_reminds_the_agency_once_at_risk_and_tells_the_manager_once_overdue() -> None:
    at_risk, due_at = due(STANDARD, "AMBER", MONDAY_9)
    times = RequestTimes("AMBER", MONDAY_9, due_at)
    assert chasing(STANDARD, times, MONDAY_9 + timedelta(minutes=1)) == []
    assert chasing(STANDARD, times, at_risk) == [REMIND]
    reminded = RequestTimes("AMBER", MONDAY_9, due_at, reminded_at=at_risk)
    assert chasing(STANDARD, reminded, at_risk + timedelta(minutes=1)) == []
    assert chasing(STANDARD, reminded, due_at) == [ESCALATE]
    answered = RequestTimes("AMBER", MONDAY_9, due_at, answered_at=at_risk, answer=HELD)
    assert chasing(STANDARD, answered, due_at + timedelta(days=1)) == []


def _return(answer: str, **given: object) -> object:
    values: dict[str, object] = {"answers": {}, "summary": "", "declined_reason": "", "searched_on": date(2026, 11, 23),
                                 "systems_searched": ["Niche RMS"]}
    values.update(given)
    return checked_return(answer, PROMPTS, values["answers"], values["summary"], values["declined_reason"],  # type: ignore[arg-type]
                          values["searched_on"], values["systems_searched"], MONDAY_9.date(), date(2026, 11, 24))  # type: ignore[arg-type]


def test_a_nil_return_says_when_and_where_it_searched_and_holds_nothing() -> None:
    nil = _return(NIL)
    assert nil.answer == NIL and nil.systems_searched == ("Niche RMS",)  # type: ignore[attr-defined]
    with pytest.raises(ReturnRefused, match="searched"):
        _return(NIL, systems_searched=[" "])
    with pytest.raises(ReturnRefused, match="searched"):
        _return(NIL, searched_on=None)
    with pytest.raises(ReturnRefused, match="holds nothing"):
        _return(NIL, answers={"pnc_pnd": "one caution, 2019"})


def test_information_held_needs_something_written_and_only_against_prompts_asked() -> None:
    held = _return(HELD, answers={"pnc_pnd": "one caution, 2019", "other": "  "})
    assert held.answers == {"pnc_pnd": "one caution, 2019"}  # type: ignore[attr-defined]
    with pytest.raises(ReturnRefused, match="write what is held"):
        _return(HELD)
    with pytest.raises(ReturnRefused, match="not asked"):
        _return(HELD, answers={"gp": "registered"})


def test_declining_needs_a_reason_and_a_search_date_cannot_be_before_the_request_or_after_today() -> None:
    with pytest.raises(ReturnRefused, match="why"):
        _return(DECLINED)
    assert _return(DECLINED, declined_reason="live operation").declined_reason == "live operation"  # type: ignore[attr-defined]
    for when in (date(2026, 11, 22), date(2026, 11, 25)):
        with pytest.raises(ReturnRefused, match="between"):
            _return(NIL, searched_on=when)
    with pytest.raises(ReturnRefused, match="answer one of"):
        _return("PROBABLY")


def test_the_threshold_decision_checks_level_outcome_census_codes_and_rationale() -> None:
    decided = threshold_decision(CATALOGUE, 3, "S17_ASSESSMENT", ["3b", "1B", "3B"], "police DA history; GP concerns")
    assert decided.factors == ("3B", "1B")
    for level, outcome, factors, rationale, problem in [
        (5, "S17_ASSESSMENT", ["3B"], "r", "level"), (3, "ADOPT", ["3B"], "r", "outcome"),
        (3, "S17_ASSESSMENT", ["99Z"], "r", "not a Children in Need"), (3, "S17_ASSESSMENT", [], "r", "name the"),
        (1, "NO_FURTHER_ACTION", ["21", "3B"], "r", "cannot stand"),
        (1, "NO_FURTHER_ACTION", ["21"], " ", "rationale")]:
        with pytest.raises(DecisionRefused, match=problem):
            threshold_decision(CATALOGUE, level, outcome, factors, rationale)


def test_a_request_shows_an_agency_only_the_identifying_fields_its_role_may_see_latest_first() -> None:
    early, late = MONDAY_9 - timedelta(days=3), MONDAY_9
    events = [
        StandingEvent("p", early, {"subject": {"given_name": "Ruby", "family_name": "Okafor", "postcode": "LS1 1AA",
                                               "date_of_birth": "2015-03-02"}, "payload": {"summary": "secret"}},
                      {"mash_police_officer": ["subject.given_name", "subject.family_name", "subject.postcode",
                                               "subject.date_of_birth", "payload.summary"]}),
        StandingEvent("p", late, {"subject": {"given_name": "Ruby", "postcode": "LS2 2BB", "nhs_number": "9434765919"}},
                      {"mash_police_officer": ["subject.given_name", "subject.postcode"],
                       "mash_health_practitioner": ["subject.nhs_number"]}),
    ]
    police = identity_for("mash_police_officer", events)
    assert police == {"subject.given_name": "Ruby", "subject.family_name": "Okafor",
                      "subject.date_of_birth": "2015-03-02", "subject.postcode": "LS2 2BB"}
    assert identity_for("mash_health_practitioner", events) == {"subject.nhs_number": "9434765919"}
    assert identity_for("education_safeguarding_lead", events) == {}
    assert identifies(police) and identifies({"subject.nhs_number": "9434765919"})
    assert not identifies({"subject.given_name": "Ruby", "subject.postcode": "LS2 2BB"})


def test_an_adult_needs_who_they_are_a_name_and_a_real_date_of_birth_and_blank_rows_are_dropped() -> None:
    from services.enquiry.adults import AdultRefused, checked_adults

    today = date(2026, 12, 3)
    named = checked_adults([{"relation": "carer", "given_name": " Grace ", "postcode": "ls6 2qt"},
                            {"relation": "risk", "given_name": "", "family_name": ""}], today)
    assert [(a.relation, a.identity()) for a in named] == [
        ("carer", {"subject.given_name": "Grace", "subject.postcode": "LS6 2QT"})]
    for row, problem in (({"relation": "uncle", "given_name": "X"}, "who each adult is"),
                         ({"relation": "parent", "date_of_birth": "1980-01-01"}, "needs a name"),
                         ({"relation": "parent", "given_name": "X", "date_of_birth": "1980-13-01"}, "not a date"),
                         ({"relation": "parent", "given_name": "X", "date_of_birth": "2027-01-01"}, "future"),
                         ({"relation": "parent", "given_name": "x" * 81}, "too long")):
        with pytest.raises(AdultRefused, match=problem):
            checked_adults([row], today)
    with pytest.raises(AdultRefused, match="at most"):
        checked_adults([{"relation": "parent", "given_name": f"A{n}"} for n in range(7)], today)
