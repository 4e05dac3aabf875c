"""The context triage receives with each event: counts relative to when the event occurred."""

from services.enrichment.context import DAY_MS, Status, address_key, person_context, prior_events, status_change

NOW = 400 * DAY_MS


def test_prior_events_count_back_from_when_the_event_occurred_per_agency_and_window() -> None:
    history = [("POLICE", NOW - 10 * DAY_MS), ("POLICE", NOW - 60 * DAY_MS), ("HEALTH", NOW - 200 * DAY_MS),
               ("HEALTH", NOW - 366 * DAY_MS), ("EDUCATION", NOW + DAY_MS), ("POLICE", NOW)]
    assert prior_events(history, NOW) == [
        {"agency": "POLICE", "last_30_days": 1, "last_90_days": 2, "last_365_days": 2},
        {"agency": "HEALTH", "last_30_days": 0, "last_90_days": 0, "last_365_days": 1},
    ]


def test_social_care_events_and_the_cp_flag_change_status() -> None:
    status = Status()
    status = status.updated(status_change("uk.mash.social_care.SocialCareEvent", {"kind": "CP_PLAN_STARTED"}))
    assert status == Status(open_social_care=True, child_protection_plan=True)
    status = status.updated(status_change("uk.mash.social_care.SocialCareEvent", {"kind": "CP_PLAN_ENDED"}))
    assert status == Status(open_social_care=True)
    assert status_change("uk.mash.health.EmergencyAttendance", {"child_protection_flag": True}) == \
        {"child_protection_plan": True}
    assert status_change("uk.mash.police.PublicProtectionNotification", {}) == {}


def test_the_same_home_typed_differently_is_one_address_and_a_partial_one_is_none() -> None:
    assert address_key({"address_line": "12 Victoria Rd.", "postcode": "ls6 1ab"}) == \
        address_key({"address_line": "12 VICTORIA RD", "postcode": "LS61AB"})
    assert address_key({"address_line": None, "postcode": "LS6 1AB"}) == ""


def test_household_excludes_nobody_it_was_not_given_and_is_bounded() -> None:
    context = person_context(Status(), [], NOW, [f"p{i:02d}" for i in range(30)])
    assert len(context["household_person_ids"]) == 20
    assert context["household_person_ids"][0] == "p00"
