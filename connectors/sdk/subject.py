"""Where a source keeps the child's identifiers and demographics, declared once per connector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connectors.sdk.contract import MappingError
from connectors.sdk.fields import optional, parse_date, parse_sex, require
from mash.identifiers import is_valid_nhs_number, is_valid_upn, normalise_nhs_number, normalise_upn
from mash.limits import over_limit


@dataclass(frozen=True)
class SubjectFields:
    """The source field name for each part of the envelope's subject; None if the source lacks it."""

    local_id: str
    nhs_number: str | None = None
    nhs_number_verified: str | None = None  # a field saying whether the source verified it (UK Core's status)
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

        nhs_number = normalise_nhs_number(text(self.nhs_number))
        upn = normalise_upn(text(self.upn))
        subject = {
            "local_id": require(fields, self.local_id),
            "nhs_number": nhs_number,
            "nhs_number_status": self._nhs_status(nhs_number, fields),
            "upn": upn,
            "upn_status": _status(upn, is_valid_upn),
            "given_name": text(self.given_name),
            "family_name": text(self.family_name),
            "date_of_birth": parse_date(fields, self.date_of_birth) if self.date_of_birth else None,
            "sex": parse_sex(fields, self.sex) if self.sex else "UNKNOWN",
            "address_line": text(self.address_line),
            "postcode": text(self.postcode),
        }
        too_long = over_limit(subject)
        if too_long:  # the hub would refuse it too: say so here, with the source's field name
            raise MappingError(f"field {getattr(self, too_long.field)!r} is {too_long.length} characters; "
                               f"the limit for a child's {too_long.field.replace('_', ' ')} is {too_long.limit}")
        return subject


    def _nhs_status(self, nhs_number: str | None, fields: dict[str, Any]) -> str:
        """A source that says whether it verified the number is taken at its word: an unverified
        number is kept and marked, never trusted for linking (a mistraced number joins two children)."""
        status = _status(nhs_number, is_valid_nhs_number)
        verified = fields.get(self.nhs_number_verified) is True if self.nhs_number_verified else True
        return "UNVERIFIED" if status == "VALID" and not verified else status


def _status(value: str | None, is_valid: Callable[[str | None], bool]) -> str:
    """An invalid identifier is kept and marked, never dropped and never trusted for linking."""
    if value is None:
        return "ABSENT"
    return "VALID" if is_valid(value) else "INVALID"
