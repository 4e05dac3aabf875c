"""Typed connector configuration, declared once and validated at start.

A connector declares a pydantic model; the SDK loads it from a YAML file (or the defaults) and
reports every bad or unknown setting together, each by name, before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

C = TypeVar("C", bound="ConnectorConfig")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names every bad setting."""


class ConnectorConfig(BaseModel):
    """Settings every connector has. Subclasses add their source's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(500, ge=1, le=100_000,
                            description="Records sent before waiting for the broker's acknowledgement "
                                        "and saving a checkpoint.")
    max_rate: float = Field(0.0, ge=0.0,
                            description="Most records per second to send; 0 means no limit. Protects the "
                                        "broker and the hub when a large backlog arrives at once.")
    state_url: str = Field("", description="SQLAlchemy URL of the checkpoint store; empty means a SQLite "
                                           "file in MASH_STATE_DIR.")


def load_config(config_class: type[C], path: Path | None = None, overrides: dict[str, Any] | None = None,
                defaults: dict[str, Any] | None = None) -> C:
    """Read `path` (YAML) over the defaults, apply `overrides`, validate everything at once."""
    data: dict[str, Any] = dict(defaults or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the configuration: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the configuration must be a mapping of setting: value")
        data.update(loaded)
    data.update(overrides or {})
    try:
        return config_class.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                             for e in exc.errors())
        where = f" in {path}" if path else ""
        raise ConfigError(f"{config_class.__name__}{where} has {exc.error_count()} bad setting(s):\n"
                          f"{problems}") from None
