"""The connectors: the four shipped here, and any an integrator adds without touching this code,
through the `mash.connectors` entry point group of their package or `MASH_CONNECTORS`
("module:Class,module:Class")."""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
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


def all_connectors() -> dict[str, type[Connector]]:
    """The shipped connectors and the ones installed or named in MASH_CONNECTORS."""
    found = dict(CONNECTORS)
    for entry in entry_points(group="mash.connectors"):
        found[entry.name] = entry.load()
    for spec in filter(None, (s.strip() for s in os.environ.get("MASH_CONNECTORS", "").split(","))):
        module, _, attribute = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise SystemExit(f"mash: MASH_CONNECTORS names {spec!r}, which cannot be loaded: {exc}") from None
        found[cls.name] = cls
    return found


def connector_class(name: str) -> type[Connector]:
    try:
        return all_connectors()[name]
    except KeyError:
        raise SystemExit(f"mash: no connector {name!r}; `mash connector list` shows them") from None


def build_connector(name: str, state_dir: Path, config_file: Path | None = None,
                    overrides: dict[str, Any] | None = None) -> Connector:
    """The connector with its configuration: defaults, then the file, then overrides."""
    cls = connector_class(name)
    config = load_config(cls.config_class, config_file, overrides, defaults=cls.defaults(state_dir))
    return cls(config)
