"""School concerns (attendance drops, children missing education, safeguarding concerns), from a
CSV export of the school information system."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.sdk import (
    Mapped,
    SubjectFields,
    optional,
    parse_datetime,
    parse_percent,
    parse_symbol,
    require,
)
from connectors.sdk.file_drop_connector import FileDropConnector

CONCERN_KINDS = frozenset({"ATTENDANCE_DROP", "CHILD_MISSING_EDUCATION", "SAFEGUARDING_CONCERN",
                           "OTHER"})
CATEGORIES = frozenset({"NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "DOMESTIC_ABUSE", "OTHER"})


class EducationConnector(FileDropConnector):
    name = "education"
    agency = "EDUCATION"
    event_type = "education.concern"
    source_system = "school-information-system"
    file_format = "csv"
    sample = Path(__file__).parent / "samples" / "concerns.csv"
    subject_fields = SubjectFields(
        local_id="pupil_id", nhs_number="nhs_number", upn="upn", given_name="forename", family_name="surname",
        date_of_birth="dob", sex="sex", address_line="address", postcode="postcode",
    )

    def map(self, fields: dict[str, Any]) -> Mapped:
        category = optional(fields, "safeguarding_category")
        return Mapped(
            source_record_id=require(fields, "concern_id"),
            occurred_at=parse_datetime(fields, "logged_at"),
            subject=self.subject_fields.read(fields),
            payload={
                "school_urn": require(fields, "school_urn"),
                "concern_kind": parse_symbol(fields, "concern_kind", CONCERN_KINDS),
                "attendance_percent": parse_percent(fields, "attendance_percent"),
                "previous_attendance_percent": parse_percent(fields, "previous_attendance_percent"),
                "safeguarding_category": (
                    parse_symbol(fields, "safeguarding_category", CATEGORIES) if category else None
                ),
                "detail": optional(fields, "detail"),
            },
        )
