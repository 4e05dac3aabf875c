"""Police public protection notifications (PPNs), from a file drop of JSON lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sdk import (
    Connector,
    Mapped,
    optional,
    parse_bool,
    parse_consent,
    parse_date,
    parse_datetime,
    parse_sex,
    parse_symbol,
    require,
)

INCIDENT_TYPES = frozenset({"DOMESTIC_ABUSE", "CHILD_AT_RISK", "MISSING_EPISODE", "ASSAULT",
                            "SEXUAL_OFFENCE", "EXPLOITATION", "OTHER"})
CHILD_ROLES = frozenset({"VICTIM", "WITNESS", "PRESENT", "SUSPECT", "OTHER"})
RISK_GRADINGS = frozenset({"STANDARD", "MEDIUM", "HIGH"})


class PoliceConnector(Connector):
    name = "police"
    agency = "POLICE"
    event_type = "police.public_protection_notification"
    source_system = "police-records-management"
    sample = Path(__file__).parent / "samples" / "ppn.jsonl"

    def map(self, fields: dict[str, Any]) -> Mapped:
        return Mapped(
            source_record_id=require(fields, "ppn_id"),
            occurred_at=parse_datetime(fields, "occurred_at"),
            consent=parse_consent(fields, "consent"),
            subject={
                "local_id": require(fields, "person_ref"),
                "nhs_number": optional(fields, "nhs_number"),
                "upn": None,
                "given_name": optional(fields, "forename"),
                "family_name": optional(fields, "surname"),
                "date_of_birth": parse_date(fields, "dob"),
                "sex": parse_sex(fields, "sex"),
                "address_line": optional(fields, "address"),
                "postcode": optional(fields, "postcode"),
            },
            payload={
                "incident_reference": require(fields, "incident_ref"),
                "incident_type": parse_symbol(fields, "incident_type", INCIDENT_TYPES),
                "child_role": parse_symbol(fields, "child_role", CHILD_ROLES),
                "children_present": parse_bool(fields, "children_present"),
                "risk_grading": parse_symbol(fields, "risk_grading", RISK_GRADINGS),
                "summary": optional(fields, "summary"),
            },
        )
