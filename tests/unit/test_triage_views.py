import pytest

from services.triage.scoring_file import load_scoring
from services.triage_app.matches import evidence_shown, may_review
from services.triage_app.passwords import WeakPassword, hash_password, verify_password
from services.triage_app.views import (
    SeenEvent,
    action_detail,
    may_read_rationale,
    score_seen,
    seen_event,
    visible_event,
    visible_reasons,
    visible_values,
)
from tests.unit.test_correlation import MECHANICS_SCORING

VALUES = {"subject": {"given_name": "Ruby", "family_name": "Okafor"},
          "payload": {"presenting_complaint": "clinical", "safeguarding_concern": True, "injury_pattern_concern": True}}
VIEWS = {"mash_health_practitioner": ["subject.given_name", "payload.presenting_complaint",
                                      "payload.injury_pattern_concern", "payload.safeguarding_concern"],
         "mash_social_worker": ["subject.given_name", "payload.safeguarding_concern"]}


def test_a_role_sees_exactly_its_views_fields() -> None:
    assert visible_values(VALUES, VIEWS["mash_social_worker"]) == {
        "subject": {"given_name": "Ruby"}, "payload": {"safeguarding_concern": True}}


def test_a_role_without_a_view_and_an_auditor_see_the_event_as_withheld() -> None:
    for role in ("mash_police_officer", None):
        seen = visible_event("e1", "health.emergency_attendance", "HEALTH", 0, VALUES, VIEWS, role)
        assert seen.withheld and seen.fields == () and seen.event_type is None


def test_reasons_are_found_only_from_what_the_role_sees() -> None:
    scoring = load_scoring(MECHANICS_SCORING)  # frozen weights: the numbers below are its own
    social = visible_values(VALUES, VIEWS["mash_social_worker"])
    health = visible_values(VALUES, VIEWS["mash_health_practitioner"])
    assert visible_reasons(scoring, [("health.emergency_attendance", "HEALTH", 0, social)]) == [
        "emergency department attendance with a safeguarding concern (+25)"]
    assert len(visible_reasons(scoring, [("health.emergency_attendance", "HEALTH", 0, health)])) == 2


def test_passwords_are_salted_argon2id_hashes_and_short_ones_are_refused() -> None:
    first, second = hash_password("a long enough secret"), hash_password("a long enough secret")
    assert first != second and first.startswith("$argon2id$")
    assert verify_password("a long enough secret", first) and not verify_password("a long enough secreT", first)
    assert not verify_password("anything", "not-a-hash")
    with pytest.raises(WeakPassword):
        hash_password("short")


LEE = ["two-agencies-within-7-days", "emergency-attendance-injury-pattern", "emergency-attendance-safeguarding-flag",
       "missing-education"]  # 50 + 40 + 25 + 20 = 135


def test_a_score_resting_on_a_withheld_value_is_not_shown_nor_what_it_hides() -> None:
    """Health sees the attendance in full and nothing of the school's report: the number (and any
    count) would give away the +20 for missing education; the social worker sees every reason."""
    scoring = load_scoring(MECHANICS_SCORING)  # frozen weights: the numbers below are its own
    attendance = {"payload": {"safeguarding_concern": True, "injury_pattern_concern": True}}
    school = {"payload": {"concern_kind": "CHILD_MISSING_EDUCATION"}}

    def events(sees_school: bool) -> list[SeenEvent]:
        return [seen_event("health.emergency_attendance", "HEALTH", 0, attendance, ["payload.safeguarding_concern",
                                                                                   "payload.injury_pattern_concern"]),
                seen_event("education.concern", "EDUCATION", 1000, school,
                           ["payload.concern_kind"] if sees_school else [])]

    health = score_seen(scoring, 135, LEE, events(False))
    assert (health.score, health.withheld, len(health.reasons)) == (None, True, 3)
    social = score_seen(scoring, 135, LEE, events(True))
    assert (social.score, social.withheld, len(social.reasons)) == (135, False, 4)
    assert score_seen(scoring, 135, [*LEE, "not-in-this-scoring-file"], events(True)).score is None


def test_whether_the_score_shows_does_not_say_whether_a_withheld_field_raised_it() -> None:
    """A school report withheld from the police officer raised nothing (concern kind OTHER): had the
    score shown, the officer would learn it was no attendance drop. Hidden just the same."""
    scoring = load_scoring(MECHANICS_SCORING)  # frozen weights: the numbers below are its own
    police = seen_event("police.public_protection_notification", "POLICE", 0,
                        {"payload": {"risk_grading": "HIGH"}}, ["payload.risk_grading"])
    quiet = seen_event("education.concern", "EDUCATION", 1000, {"payload": {"concern_kind": "OTHER"}}, [])
    seen = score_seen(scoring, 130, ["police-high-risk", "two-agencies-within-7-days"], [police, quiet])
    assert (seen.score, seen.withheld) == (None, True)
    assert seen.reasons == ("police graded the incident high risk (+80)",
                            "two or more agencies raised concerns about this child within 7 days (+50)")
    unread = seen_event("education.concern", "EDUCATION", 1000, {"payload": {"school_urn": "1"}}, [])
    assert score_seen(scoring, 130, ["police-high-risk", "two-agencies-within-7-days"], [police, unread]).score == 130


def test_free_text_is_read_by_its_authors_sharing_role_and_triage_managers() -> None:
    assert may_read_rationale("mash_health_practitioner", "triage_worker", "mash_health_practitioner")
    assert may_read_rationale("mash_health_practitioner", "triage_manager", "triage_manager")
    assert not may_read_rationale("mash_health_practitioner", "triage_worker", "mash_social_worker")
    assert not may_read_rationale("triage_manager", "triage_worker", "mash_police_officer")
    assert not may_read_rationale("mash_social_worker", "auditor", None)
    assert not may_read_rationale(None, "triage_worker", None)  # an author without a view: managers only
    assert action_detail("re-rated", "RED to AMBER: in custody", False) == "RED to AMBER"
    assert action_detail("re-rated", "RED to AMBER: in custody", True) == "RED to AMBER: in custody"
    assert action_detail("assigned", "to pat (was unclaimed)", False) == "to pat (was unclaimed)"


def test_a_possible_match_is_for_who_sees_both_children_and_shows_only_levels_seen_on_both_sides() -> None:
    police_event = {"subject.given_name", "subject.family_name", "subject.postcode"}
    assert not may_review("triage_worker", police_event, set())  # nothing of who the candidate is
    assert not may_review("triage_worker", {"subject.postcode"}, police_event)  # a postcode is not who
    assert may_review("triage_worker", police_event, {"subject.date_of_birth"})
    assert may_review("triage_manager", set(), set())
    levels = {"given": "EXACT", "dob": "TRANSPOSED", "postcode": "DISAGREE", "unknown": "X"}
    assert evidence_shown(levels, police_event | {"subject.date_of_birth"}, {"subject.given_name",
                                                                             "subject.date_of_birth"}) == {
        "given": "EXACT", "dob": "TRANSPOSED"}
