"""School concerns (attendance drops, children missing education, safeguarding concerns), polled
from the school information system's database through two views (see samples/school.sql)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from connectors.education.answers import answer_from
from connectors.sdk import (
    Mapped,
    SubjectFields,
    optional,
    parse_datetime,
    parse_percent,
    parse_revised_at,
    parse_symbol,
    require,
)
from connectors.sdk.answering import Draft
from connectors.sdk.database_connector import DatabasePollConnector

CONCERN_KINDS = frozenset({"ATTENDANCE_DROP", "CHILD_MISSING_EDUCATION", "SAFEGUARDING_CONCERN",
                           "OTHER"})
CATEGORIES = frozenset({"NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "DOMESTIC_ABUSE", "OTHER"})


class EducationConnector(DatabasePollConnector):
    name = "education"
    agency = "EDUCATION"
    event_type = "education.concern"
    source_system = "school-information-system"
    sample = Path(__file__).parent / "samples" / "school.sql"
    stamps_revisions = False  # updated_at is the poll cursor: a row touched unchanged is a resubmission
    enquiry_agency = "education"  # answers the MASH's information requests from the same views
    subject_fields = SubjectFields(
        local_id="pupil_id", nhs_number="nhs_number", upn="upn", given_name="forename", family_name="surname",
        date_of_birth="dob", sex="sex", address_line="address", postcode="postcode",
    )

    @classmethod
    def defaults(cls, state_dir: Path) -> dict[str, Any]:
        return {
            "url": f"sqlite:///{state_dir / 'connectors' / cls.name / 'school.db'}",
            "streams": [
                {"table": "mash_attendance", "cursor": "updated_at", "key": "concern_id"},
                {"table": "mash_safeguarding", "cursor": "updated_at", "key": "concern_id"},
            ],
        }

    def answerer(self) -> Callable[[dict[str, Any]], Draft | None]:
        engine = create_engine(self.config.url.get_secret_value())
        return partial(answer_from, engine)

    def map(self, fields: dict[str, Any]) -> Mapped:
        category = optional(fields, "safeguarding_category")
        return Mapped(
            revised_at=parse_revised_at(fields, "updated_at"),
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
