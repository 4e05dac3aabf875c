"""Where a source keeps the child's identifiers and demographics, declared once per connector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.sdk.fields import optional, parse_date, parse_sex, require


@dataclass(frozen=True)
class SubjectFields:
    """The source field name for each part of the envelope's subject; None if the source lacks it."""

    local_id: str
    nhs_number: str | None = None
    upn: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: str | None = None
    sex: str | None = None
    address_line: str | None = None
    postcode: str | None = None

    def read(self, fields: dict[str, Any]) -> dict[str, Any]:
        def text(name: str | None) -> str | None:
            return optional(fields, name) if name else None

        return {
            "local_id": require(fields, self.local_id),
            "nhs_number": text(self.nhs_number),
            "upn": text(self.upn),
            "given_name": text(self.given_name),
            "family_name": text(self.family_name),
            "date_of_birth": parse_date(fields, self.date_of_birth) if self.date_of_birth else None,
            "sex": parse_sex(fields, self.sex) if self.sex else "UNKNOWN",
            "address_line": text(self.address_line),
            "postcode": text(self.postcode),
        }
