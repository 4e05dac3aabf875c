"""The MASH enquiry's pure rules, attacked: hostile returns, bad threshold codes, consent spelled
wrongly, and what a request may show an agency's role. A defect is a strict xfail naming it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.enquiry.catalogue import load_catalogue
from services.enquiry.consent import ConsentRefused, consent_decision
from services.enquiry.request_view import StandingEvent, identifies, identity_for
from services.enquiry.returns import ReturnRefused, checked_return
from services.enquiry.threshold import DecisionRefused, threshold_decision

CATALOGUE = load_catalogue()
PROMPTS = CATALOGUE.agencies["police"].prompts
SENT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).date()
TODAY = SENT


@pytest.mark.parametrize(("answer", "answers", "summary", "declined", "searched_on", "systems"), [
    ("held", {"other": "x"}, "", "", TODAY, ["PNC"]),  # answer kinds are exact
    ("HELD", {"OTHER": "x"}, "", "", TODAY, ["PNC"]),  # prompt ids are exact
    ("HELD", {"other ": "x"}, "", "", TODAY, ["PNC"]),
    ("HELD", {"pnc_pnd": "   "}, "  ", "", TODAY, ["PNC"]),  # held, but nothing written
    ("HELD", {"other": "x" * 8001}, "", "", TODAY, ["PNC"]),
    ("HELD", {"other": "a\x00b"}, "", "", TODAY, ["PNC"]),
    ("NIL", {}, "", "", TODAY, ["   ", "\t"]),  # no system named
    ("NIL", {}, "", "", TODAY + timedelta(days=1), ["PNC"]),
    ("NIL", {}, "", "", date(1, 1, 1), ["PNC"]),
    ("NIL", {}, "", "", None, ["PNC"]),
    ("NIL", {}, "", "", TODAY, ["x" * 81]),
    ("NIL", {}, "", "", TODAY, [f"s{i}" for i in range(21)]),
    ("NIL", {"other": "held after all"}, "", "", TODAY, ["PNC"]),
    ("DECLINED", {}, "", "   ", None, []),
    ("DECLINED", {}, "", "x" * 8001, None, []),
])
def test_a_return_that_cannot_stand_is_refused(answer: str, answers: dict[str, str], summary: str, declined: str,
                                               searched_on: date | None, systems: list[str]) -> None:
    with pytest.raises(ReturnRefused):
        checked_return(answer, PROMPTS, answers, summary, declined, searched_on, systems, SENT, TODAY)


def test_a_return_keeps_only_what_its_kind_holds() -> None:
    declined = checked_return("DECLINED", PROMPTS, {"other": "SECRET"}, "", "no basis", None, [], SENT, TODAY)
    assert declined.answers == {} and declined.declined_reason == "no basis"
    nil = checked_return("NIL", PROMPTS, {"other": "   "}, "", "ignored reason", TODAY, ["PNC", "PNC", " Niche "],
                         SENT, TODAY)
    assert nil.answers == {} and nil.declined_reason == "" and nil.systems_searched == ("PNC", "Niche")


def test_a_declined_return_with_an_impossible_search_date_is_refused() -> None:
    with pytest.raises(ReturnRefused):
        checked_return("DECLINED", PROMPTS, {}, "", "no basis", date(2999, 1, 1), ["PNC"], SENT, TODAY)


@pytest.mark.parametrize(("level", "outcome", "factors", "rationale"), [
    (0, "EARLY_HELP", ["3B"], "r"), (5, "EARLY_HELP", ["3B"], "r"), (-1, "EARLY_HELP", ["3B"], "r"),
    (2, "early_help", ["3B"], "r"), (2, "", ["3B"], "r"), (2, "EARLY_HELP", [], "r"), (2, "EARLY_HELP", [" "], "r"),
    (2, "EARLY_HELP", ["21", "3b"], "r"), (2, "EARLY_HELP", ["3Z"], "r"), (2, "EARLY_HELP", ["3B\x00"], "r"),
    (2, "EARLY_HELP", ["3B"], " \n "), (2, "EARLY_HELP", ["3B"], "x" * 8001), (2, "EARLY_HELP", ["3B"], "a\x00b"),
])
def test_a_threshold_decision_with_bad_codes_is_refused(level: int, outcome: str, factors: list[str],
                                                        rationale: str) -> None:
    with pytest.raises(DecisionRefused):
        threshold_decision(CATALOGUE, level, outcome, factors, rationale)


def test_factor_codes_are_read_whatever_their_case_and_once() -> None:
    decided = threshold_decision(CATALOGUE, 2, "EARLY_HELP", [" 3b", "3B", "18c"], " why ")
    assert decided.factors == ("3B", "18C") and decided.rationale == "why"


@pytest.mark.parametrize(("choice", "reason", "manager"), [
    ("NOT_SAFE_TO_SEEK", "father may flee", False), ("not_safe_to_seek", "r", True), ("NOT_SAFE_TO_SEEK", " ", True),
    ("REFUSED", "\t", False), ("NOT_SOUGHT", "r", True), ("", "", True), ("GIVEN", "x" * 4001, False),
])
def test_a_consent_decision_that_cannot_stand_is_refused(choice: str, reason: str, manager: bool) -> None:
    with pytest.raises(ConsentRefused):
        consent_decision(choice, reason, "someone", manager)


def _event(when: datetime, subject: dict[str, object], views: dict[str, list[str]]) -> StandingEvent:
    return StandingEvent("p1", when, {"subject": subject, "payload": {"summary": "SECRET"}}, views)


def test_a_request_shows_a_role_only_identifying_fields_its_views_allow() -> None:
    events = [
        _event(SENT, {"given_name": "Ruby", "family_name": "Okafor", "date_of_birth": "2015-03-02",
                      "nhs_number": "9434765919", "postcode": "<b>N1</b>"},
               {"mash_health_practitioner": ["subject.given_name", "subject.nhs_number", "payload.summary"],
                "mash_police_officer": ["subject.given_name", "subject.family_name", "subject.date_of_birth",
                                        "subject.postcode", "payload.summary"]}),
        _event(SENT - timedelta(days=1), {"given_name": "OLD", "family_name": "OLDER"},
               {"mash_police_officer": ["subject.given_name", "subject.family_name"]}),
    ]
    police = identity_for("mash_police_officer", events)
    assert police == {"subject.given_name": "Ruby", "subject.family_name": "Okafor",
                      "subject.date_of_birth": "2015-03-02", "subject.postcode": "<b>N1</b>"}
    assert identity_for("mash_health_practitioner", events) == {"subject.given_name": "Ruby",
                                                                "subject.nhs_number": "9434765919"}
    assert identity_for("education_safeguarding_lead", events) == {}
    assert identity_for("", events) == {}
    assert not identifies({"subject.given_name": "Ruby"}) and not identifies({"subject.date_of_birth": "2015-03-02"})
    assert not identifies({"subject.nhs_number": "", "subject.given_name": "", "subject.date_of_birth": "x"})


def test_blank_and_non_text_identifiers_are_not_shown() -> None:
    events = [_event(SENT, {"given_name": "   ", "family_name": None, "date_of_birth": {"y": 2015},
                            "upn": ["A"]}, {"r": ["subject.given_name", "subject.family_name",
                                                  "subject.date_of_birth", "subject.upn"]}),
              StandingEvent("p1", SENT, {"subject": "not a mapping"}, {"r": ["subject.given_name"]})]
    assert identity_for("r", events) == {}
