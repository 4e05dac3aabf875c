"""Children's social care case events (referrals, child protection plans, looked-after status),
pushed over HTTP by the case management system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sdk import (
    Mapped,
    MappingError,
    SubjectFields,
    optional,
    parse_consent,
    parse_datetime,
    parse_revised_at,
    parse_symbol,
    parse_withdrawn,
    require,
)
from connectors.sdk.http_push_connector import HttpPushConnector

KINDS = frozenset({"REFERRAL", "CP_PLAN_STARTED", "CP_PLAN_ENDED", "LOOKED_AFTER_STARTED",
                   "LOOKED_AFTER_ENDED", "OTHER"})
REFERRAL_CATEGORIES = frozenset({"NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "DOMESTIC_ABUSE", "EXPLOITATION",
                                 "MISSING", "OTHER"})
LEVELS_OF_NEED = frozenset("1234")  # the local continuum of need: 1 universal .. 4 specialist or statutory


class SocialCareConnector(HttpPushConnector):
    name = "social_care"
    agency = "SOCIAL_CARE"
    event_type = "social_care.case_event"
    source_system = "case-management"
    sample = Path(__file__).parent / "samples" / "case_events.jsonl"
    subject_fields = SubjectFields(
        local_id="lcs_person_id", nhs_number="nhs_number", upn="upn", given_name="first_name",
        family_name="last_name", date_of_birth="dob", sex="gender", address_line="address", postcode="postcode",
    )

    @classmethod
    def defaults(cls, state_dir: Path) -> dict[str, Any]:
        return {"token_env": "MASH_SOCIAL_CARE_PUSH_TOKEN"}

    def map(self, fields: dict[str, Any]) -> Mapped:
        return Mapped(
            revised_at=parse_revised_at(fields, "updated_at"),
            withdrawn=parse_withdrawn(fields, "record_status"),
            source_record_id=require(fields, "case_event_id"),
            occurred_at=parse_datetime(fields, "occurred_at"),
            consent=parse_consent(fields, "consent"),
            subject=self.subject_fields.read(fields),
            payload={
                "case_reference": require(fields, "case_reference"),
                "kind": parse_symbol(fields, "kind", KINDS),
                "referral_source": optional(fields, "referral_source"),
                "plan_category": optional(fields, "plan_category"),
                "referral_category": (parse_symbol(fields, "referral_category", REFERRAL_CATEGORIES)
                                      if optional(fields, "referral_category") else None),
                "level_of_need": parse_level(fields, "level_of_need"),
                "detail": optional(fields, "detail"),
            },
        )


def parse_level(fields: dict[str, Any], name: str) -> int | None:
    """A referral's level of need, 1 to 4 (a whole number or its digit as text), or None when absent."""
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        text = None
    elif isinstance(value, int):
        text = str(value) if 0 <= value <= 9 else None  # never str() of a huge int: Python refuses one
    else:
        text = value.strip()
    if text not in LEVELS_OF_NEED:
        shown = value[:40] if isinstance(value, str) else type(value).__name__ if text is None else text
        raise MappingError(f"field {name!r} must be a level of need from 1 to 4, got {shown!r}")
    return int(text)
