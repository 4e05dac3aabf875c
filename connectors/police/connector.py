"""Police public protection notifications (PPNs), from a file drop of JSON lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sdk import (
    Mapped,
    SubjectFields,
    optional,
    parse_bool,
    parse_consent,
    parse_datetime,
    parse_revised_at,
    parse_symbol,
    parse_withdrawn,
    require,
)
from connectors.sdk.file_drop_connector import FileDropConnector

INCIDENT_TYPES = frozenset({"DOMESTIC_ABUSE", "CHILD_AT_RISK", "MISSING_EPISODE", "ASSAULT",
                            "SEXUAL_OFFENCE", "EXPLOITATION", "OTHER"})
CHILD_ROLES = frozenset({"VICTIM", "WITNESS", "PRESENT", "SUSPECT", "OTHER"})
RISK_GRADINGS = frozenset({"STANDARD", "MEDIUM", "HIGH"})


class PoliceConnector(FileDropConnector):
    name = "police"
    agency = "POLICE"
    event_type = "police.public_protection_notification"
    source_system = "police-records-management"
    file_format = "jsonl"
    sample = Path(__file__).parent / "samples" / "ppn.jsonl"
    subject_fields = SubjectFields(
        local_id="person_ref", nhs_number="nhs_number", given_name="forename", family_name="surname",
        date_of_birth="dob", sex="sex", address_line="address", postcode="postcode",
    )

    def map(self, fields: dict[str, Any]) -> Mapped:
        return Mapped(
            revised_at=parse_revised_at(fields, "updated_at"),
            withdrawn=parse_withdrawn(fields, "record_status"),
            source_record_id=require(fields, "ppn_id"),
            occurred_at=parse_datetime(fields, "occurred_at"),
            consent=parse_consent(fields, "consent"),
            subject=self.subject_fields.read(fields),
            payload={
                "incident_reference": require(fields, "incident_ref"),
                "incident_type": parse_symbol(fields, "incident_type", INCIDENT_TYPES),
                "child_role": parse_symbol(fields, "child_role", CHILD_ROLES),
                "children_present": parse_bool(fields, "children_present"),
                "risk_grading": parse_symbol(fields, "risk_grading", RISK_GRADINGS),
                "summary": optional(fields, "summary"),
            },
        )
