"""Reading fields out of a parsed source record, with errors that name the field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from connectors.sdk.contract import MappingError
from mash.limits import TEXT_CHARS

MAX_TEXT_CHARS = TEXT_CHARS  # a free-text field larger than this is a broken or hostile record


def require(fields: dict[str, Any], name: str) -> str:
    value = optional(fields, name)
    if value is None:
        raise MappingError(f"required field {name!r} is missing or blank")
    return value


def optional(fields: dict[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, (str, int, float, bool)):
        raise MappingError(f"field {name!r} must be a scalar, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise MappingError(f"field {name!r} is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    return text or None


def parse_datetime(fields: dict[str, Any], name: str) -> datetime:
    text = require(fields, name)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"field {name!r} is not an ISO 8601 date-time: {text[:40]!r}") from None
    if value.tzinfo is None:
        raise MappingError(f"field {name!r} has no time zone: {text[:40]!r}")
    return value.astimezone(UTC)


def parse_revised_at(fields: dict[str, Any], name: str) -> datetime | None:
    """When the source last changed the record: orders its revisions. A time without a zone is the
    database's UTC (a poll cursor column)."""
    text = optional(fields, name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"field {name!r} is not an ISO 8601 date-time: {text[:40]!r}") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


_WITHDRAWN = {"ACTIVE": False, "ENTERED_IN_ERROR": True}


def parse_withdrawn(fields: dict[str, Any], name: str) -> bool:
    """The record's status at its source: ENTERED_IN_ERROR retracts it (a tombstone revision)."""
    text = (optional(fields, name) or "ACTIVE").upper().replace("-", "_")
    if text not in _WITHDRAWN:
        raise MappingError(f"field {name!r} must be one of {sorted(_WITHDRAWN)}, got {text[:30]!r}")
    return _WITHDRAWN[text]


def parse_date(fields: dict[str, Any], name: str) -> date | None:
    text = optional(fields, name)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MappingError(f"field {name!r} is not an ISO 8601 date: {text[:40]!r}") from None


def parse_bool(fields: dict[str, Any], name: str, default: bool | None = None) -> bool:
    value = fields.get(name)
    if value is None or value == "":
        if default is None:
            raise MappingError(f"required field {name!r} is missing or blank")
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1"):
        return True
    if text in ("false", "no", "n", "0"):
        return False
    raise MappingError(f"field {name!r} is not a yes/no value: {text[:40]!r}")


_SEX = {"f": "FEMALE", "female": "FEMALE", "m": "MALE", "male": "MALE", "o": "OTHER",
        "other": "OTHER", "u": "UNKNOWN", "unknown": "UNKNOWN", "x": "OTHER"}
_CONSENT = {"GIVEN", "REFUSED", "NOT_SOUGHT", "NOT_SAFE_TO_SEEK", "UNKNOWN"}


def parse_sex(fields: dict[str, Any], name: str) -> str:
    text = optional(fields, name)
    if text is None:
        return "UNKNOWN"
    try:
        return _SEX[text.lower()]
    except KeyError:
        raise MappingError(f"field {name!r} is not a recognised sex code: {text[:20]!r}") from None


def parse_consent(fields: dict[str, Any], name: str) -> str:
    text = (optional(fields, name) or "UNKNOWN").upper()
    if text not in _CONSENT:
        raise MappingError(f"field {name!r} must be one of {sorted(_CONSENT)}, got {text[:30]!r}")
    return text


def parse_symbol(fields: dict[str, Any], name: str, symbols: frozenset[str]) -> str:
    text = require(fields, name).upper()
    if text not in symbols:
        raise MappingError(f"field {name!r} must be one of {sorted(symbols)}, got {text[:30]!r}")
    return text


def parse_percent(fields: dict[str, Any], name: str) -> float | None:
    text = optional(fields, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise MappingError(f"field {name!r} is not a number: {text[:20]!r}") from None
    if not 0.0 <= value <= 100.0:
        raise MappingError(f"field {name!r} must be a percentage from 0 to 100, got {value}")
    return value
