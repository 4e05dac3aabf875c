"""The connectors this distribution ships, by name."""

from __future__ import annotations

from connectors.education.connector import EducationConnector
from connectors.health.connector import HealthConnector
from connectors.police.connector import PoliceConnector
from connectors.sdk.contract import Connector
from connectors.social_care.connector import SocialCareConnector

CONNECTORS: dict[str, type[Connector]] = {
    cls.name: cls
    for cls in (PoliceConnector, HealthConnector, EducationConnector, SocialCareConnector)
}


def get_connector(name: str) -> Connector:
    try:
        return CONNECTORS[name]()
    except KeyError:
        raise SystemExit(f"mash: no connector {name!r}; `mash connector list` shows them") from None
