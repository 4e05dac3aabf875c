"""Emergency department attendances of children, from a file drop of FHIR UK Core Bundles.

Health data is special category (UK GDPR Art 9): every event is marked so, and the sharing
rules decide who may see which field. docs/mappings/health.md maps each field from UK Core.
"""

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
    parse_withdrawn,
    require,
)
from connectors.sdk.file_drop_connector import FileDropConnector


class HealthConnector(FileDropConnector):
    name = "health"
    agency = "HEALTH"
    event_type = "health.emergency_attendance"
    source_system = "ed-patient-administration"
    sensitivity = "SPECIAL_CATEGORY"
    file_format = "fhir"
    sample = Path(__file__).parent / "samples" / "ed_attendances.fhir.json"
    subject_fields = SubjectFields(
        local_id="mrn", nhs_number="nhs_number", nhs_number_verified="nhs_number_verified",
        given_name="given_name", family_name="family_name",
        date_of_birth="birth_date", sex="gender", address_line="address", postcode="postcode",
    )

    def map(self, fields: dict[str, Any]) -> Mapped:
        return Mapped(
            revised_at=parse_revised_at(fields, "last_updated"),
            withdrawn=parse_withdrawn(fields, "record_status"),
            source_record_id=require(fields, "attendance_id"),
            occurred_at=parse_datetime(fields, "arrived_at"),
            consent=parse_consent(fields, "consent"),
            subject=self.subject_fields.read(fields),
            payload={
                "attendance_id": require(fields, "attendance_id"),
                "site_code": require(fields, "site_code"),
                "presenting_complaint": require(fields, "presenting_complaint"),
                "safeguarding_concern": parse_bool(fields, "safeguarding_concern"),
                "injury_pattern_concern": parse_bool(fields, "injury_pattern_concern", default=False),
                "maltreatment_alleged": parse_bool(fields, "maltreatment_alleged", default=False),
                "child_protection_flag": parse_bool(fields, "child_protection_flag"),
                "discharge_destination": optional(fields, "discharge_destination"),
            },
        )
