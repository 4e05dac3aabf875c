"""A connector that polls an agency system's database tables or views."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import SecretStr
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from connectors.sdk.contract import Connector
from connectors.sdk.sources.base import Source, SourceRecord
from connectors.sdk.sources.database import SCOPE, DatabasePollConfig, DatabasePollSource


class DatabasePollConnector(Connector):
    """The shipped sample is a SQL script that builds a small copy of the agency's database."""

    config_class: ClassVar[type[DatabasePollConfig]] = DatabasePollConfig
    config: DatabasePollConfig

    def open_source(self) -> Source:
        return DatabasePollSource(self.config)

    def record_scope(self, record: SourceRecord) -> str:
        """The table the row was read from, as its stream's checkpoint pinned it (see
        `sources.database.record_scope`): two tables may share a key value, never a record id."""
        return str(record.position.get(SCOPE, ""))

    def install_sample(self) -> None:
        url = self.config.url.get_secret_value()
        if not url.startswith("sqlite:///"):
            raise SystemExit(f"mash: the {self.name} sample installs into SQLite only; `url` is another database")
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            db.executescript(self.sample.read_text())
        db.close()

    def use_synth(self, synth_dir: Path) -> Connector:
        database = next(self.synth_folder(synth_dir).glob("*.db"))
        return self._reconfigured(synth_dir, url=SecretStr(f"sqlite:///{database}"))

    def sample_records(self, path: Path) -> Iterator[SourceRecord]:
        db = sqlite3.connect(":memory:", check_same_thread=False)
        db.executescript(path.read_text())
        engine = create_engine("sqlite://", creator=lambda: db, poolclass=StaticPool)
        source = DatabasePollSource(self.config, engine=engine)
        return (item for item in source.items({}) if isinstance(item, SourceRecord))
