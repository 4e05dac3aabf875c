"""Children's social care case events (referrals, child protection plans, looked-after status),
from a file drop of JSON lines exported by the case management system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sdk import (
    Connector,
    Mapped,
    optional,
    parse_consent,
    parse_date,
    parse_datetime,
    parse_sex,
    parse_symbol,
    require,
)

KINDS = frozenset({"REFERRAL", "CP_PLAN_STARTED", "CP_PLAN_ENDED", "LOOKED_AFTER_STARTED",
                   "LOOKED_AFTER_ENDED", "OTHER"})


class SocialCareConnector(Connector):
    name = "social_care"
    agency = "SOCIAL_CARE"
    event_type = "social_care.case_event"
    source_system = "case-management"
    sample = Path(__file__).parent / "samples" / "case_events.jsonl"

    def map(self, fields: dict[str, Any]) -> Mapped:
        return Mapped(
            source_record_id=require(fields, "case_event_id"),
            occurred_at=parse_datetime(fields, "occurred_at"),
            consent=parse_consent(fields, "consent"),
            subject={
                "local_id": require(fields, "lcs_person_id"),
                "nhs_number": optional(fields, "nhs_number"),
                "upn": optional(fields, "upn"),
                "given_name": optional(fields, "first_name"),
                "family_name": optional(fields, "last_name"),
                "date_of_birth": parse_date(fields, "dob"),
                "sex": parse_sex(fields, "gender"),
                "address_line": optional(fields, "address"),
                "postcode": optional(fields, "postcode"),
            },
            payload={
                "case_reference": require(fields, "case_reference"),
                "kind": parse_symbol(fields, "kind", KINDS),
                "referral_source": optional(fields, "referral_source"),
                "plan_category": optional(fields, "plan_category"),
                "detail": optional(fields, "detail"),
            },
        )
