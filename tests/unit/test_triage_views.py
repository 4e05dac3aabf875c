import pytest

from services.triage.scoring_file import load_scoring
from services.triage_app.passwords import WeakPassword, hash_password, verify_password
from services.triage_app.views import visible_event, visible_reasons, visible_values

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
    scoring = load_scoring()
    social = visible_values(VALUES, VIEWS["mash_social_worker"])
    health = visible_values(VALUES, VIEWS["mash_health_practitioner"])
    assert visible_reasons(scoring, [("health.emergency_attendance", "HEALTH", 0, social)]) == [
        "emergency department attendance with a safeguarding concern (+25)"]
    assert len(visible_reasons(scoring, [("health.emergency_attendance", "HEALTH", 0, health)])) == 2


def test_passwords_are_salted_scrypt_hashes_and_short_ones_are_refused() -> None:
    first, second = hash_password("a long enough secret"), hash_password("a long enough secret")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("a long enough secret", first) and not verify_password("a long enough secreT", first)
    assert not verify_password("anything", "not-a-hash")
    with pytest.raises(WeakPassword):
        hash_password("short")
