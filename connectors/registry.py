"""The connectors this distribution ships, by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors.education.connector import EducationConnector
from connectors.health.connector import HealthConnector
from connectors.police.connector import PoliceConnector
from connectors.sdk.config import load_config
from connectors.sdk.contract import Connector
from connectors.social_care.connector import SocialCareConnector

CONNECTORS: dict[str, type[Connector]] = {
    cls.name: cls
    for cls in (PoliceConnector, HealthConnector, EducationConnector, SocialCareConnector)
}


def connector_class(name: str) -> type[Connector]:
    try:
        return CONNECTORS[name]
    except KeyError:
        raise SystemExit(f"mash: no connector {name!r}; `mash connector list` shows them") from None


def build_connector(name: str, state_dir: Path, config_file: Path | None = None,
                    overrides: dict[str, Any] | None = None) -> Connector:
    """The connector with its configuration: defaults, then the file, then overrides."""
    cls = connector_class(name)
    config = load_config(cls.config_class, config_file, {**cls.defaults(state_dir), **(overrides or {})})
    return cls(config)
