"""The timeline's amendments: what a revision changed, in what the user sees of both revisions."""

from datetime import UTC, datetime

from services.triage_app.views import VisibleEvent, amendment

WHEN = datetime(2026, 11, 10, tzinfo=UTC)


def seen(**fields: object) -> VisibleEvent:
    flat = tuple(sorted(fields.items()))
    return VisibleEvent("e", None if not flat else "ppn", "POLICE", WHEN, flat, not flat)


def test_a_re_grading_reads_as_the_agency_amending_the_field() -> None:
    before = seen(**{"payload.risk_grading": "STANDARD", "subject.given_name": "Ava"})
    after = seen(**{"payload.risk_grading": "HIGH", "subject.given_name": "Ava"})
    assert amendment("POLICE", before, after) == "police amended: risk grading STANDARD -> HIGH"


def test_fields_added_and_no_longer_shared_are_named() -> None:
    before = seen(**{"payload.detail": "x", "payload.kind": "REFERRAL"})
    after = seen(**{"payload.kind": "REFERRAL", "payload.plan_category": "NEGLECT"})
    assert amendment("SOCIAL_CARE", before, after) == (
        "social care amended: plan category added: NEGLECT; detail no longer shared")


def test_a_change_in_a_field_the_user_cannot_see_is_not_told() -> None:
    """The user sees the name only: that the grading changed must not show, only that a revision came."""
    before, after = seen(**{"subject.given_name": "Ava"}), seen(**{"subject.given_name": "Ava"})
    assert amendment("POLICE", before, after) == "police sent a revision: nothing you can see changed"
    assert amendment("POLICE", seen(), after) == "" and amendment("POLICE", before, seen()) == ""


def test_a_long_or_hostile_value_is_cut_short_and_left_for_the_template_to_escape() -> None:
    before, after = seen(**{"payload.summary": "a"}), seen(**{"payload.summary": "<script>" + "x" * 200})
    said = amendment("POLICE", before, after)
    assert said.startswith("police amended: summary a -> <script>") and len(said) < 120


def test_what_the_hub_added_is_not_the_agency_s_amendment() -> None:
    before = seen(**{"payload.risk_grading": "STANDARD", "link.link_method": "NEW_PERSON", "context.prior": 1})
    after = seen(**{"payload.risk_grading": "STANDARD", "link.link_method": "LOCAL_ID", "context.prior": 2})
    assert amendment("POLICE", before, after) == "police sent a revision: nothing you can see changed"


def test_a_field_withdrawn_since_shows_its_date_in_its_place_and_only_to_a_role_that_saw_it() -> None:
    from services.triage_app.views import visible_event

    values = {"payload": {"kind": "REFERRAL"}}
    views = {"mash_social_worker": ["payload.kind"], "mash_police_officer": []}
    withdrawn = {"mash_social_worker": {"payload.detail": "2026-11-13"}}
    worker = visible_event("e", "case", "SOCIAL_CARE", WHEN, values, views, "mash_social_worker", withdrawn)
    assert worker.withdrawn_fields == (("payload.detail", "2026-11-13"),)
    assert worker.fields == (("payload.kind", "REFERRAL"),)
    police = visible_event("e", "case", "SOCIAL_CARE", WHEN, values, views, "mash_police_officer", withdrawn)
    assert police.withheld and police.withdrawn_fields == ()
    later = visible_event("f", "case", "SOCIAL_CARE", WHEN, values, views, "mash_social_worker")
    assert amendment("SOCIAL_CARE", worker, later) == "social care amended: detail no longer shared"
