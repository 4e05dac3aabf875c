"""The connector SDK: a connector reads and maps; the SDK encodes, keys, produces and
dead-letters."""

from connectors.sdk.contract import Connector, Mapped, MappingError
from connectors.sdk.fields import (
    optional,
    parse_bool,
    parse_consent,
    parse_date,
    parse_datetime,
    parse_percent,
    parse_revised_at,
    parse_sex,
    parse_symbol,
    parse_withdrawn,
    require,
)
from connectors.sdk.subject import SubjectFields

__all__ = [
    "Connector",
    "Mapped",
    "MappingError",
    "SubjectFields",
    "optional",
    "parse_bool",
    "parse_consent",
    "parse_date",
    "parse_datetime",
    "parse_percent",
    "parse_revised_at",
    "parse_sex",
    "parse_symbol",
    "parse_withdrawn",
    "require",
]
