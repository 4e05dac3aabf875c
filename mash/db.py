"""Database engines for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import Base
from mash.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str, checkpoints_apart: bool = False) -> Engine:
    """`checkpoints_apart`: on SQLite, commits never copy the WAL back into the database file; a
    `WalCheckpoints` thread does (see there). For the hub's stages, which commit every batch."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json, json_deserializer=orjson.loads,
                               hide_parameters=True)
        event.listen(engine, "connect", partial(_sqlite_pragmas, autocheckpoint=0 if checkpoints_apart else 1000))
        return engine
    # hide_parameters: an error's message must not quote a row's values (children's details) into a log
    return create_engine(url, pool_pre_ping=True, json_serializer=_json, json_deserializer=orjson.loads,
                         hide_parameters=True)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, autocheckpoint: int = 1000) -> None:
    # WAL lets the demo's reader count rows while the hub writes; foreign keys are off by
    # default in SQLite and on in PostgreSQL, so turn them on for the same behaviour. In WAL,
    # synchronous=NORMAL is still durable across a process crash (fsync at checkpoints); a page
    # cache of 256 MB keeps a million-person index's hot pages in memory (the default is 2 MB).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
    cursor.close()


class WalCheckpoints:
    """Copies SQLite's write-ahead log back into the database file every `every_s`, in a thread.

    By default the commit that takes the log past 1,000 pages does the copy and its fsync, inside
    the batch: measured, that was a third of the hub's time per event on small batches (0.89 ms per
    event without, 1.29 with, batches of 130). A PASSIVE checkpoint waits for nobody and blocks no
    one; SQLite releases Python's lock while it runs, so it overlaps the stages' own work. Once the
    log is copied whole, the next writer starts it again from the beginning: it stays small.
    """

    def __init__(self, engine: Engine, every_s: float = 1.0) -> None:
        self._engine, self._every_s = engine, every_s
        self._stop = threading.Event()
        self.runs = 0
        threading.Thread(target=self._loop, name="wal-checkpoints", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                with self._engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                self.runs += 1
            except DBAPIError:
                continue  # the file is busy or away: the next round copies what this one did not


def engine_for(settings: Settings, checkpoints_apart: bool = False) -> Engine:
    """An engine on the hub's database, upgraded to the code's schema first (Alembic)."""
    if settings.sqlalchemy_url().startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url(), checkpoints_apart)
    for attempt in range(1, 4):
        try:
            upgrade(engine)
            break
        except DBAPIError:  # several workers starting on a new database race to create it: the loser looks again
            if attempt == 3:
                raise
            time.sleep(1.0 * attempt)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. A database without a version but with tables was made by
    create_all: with today's models it is at head; otherwise it predates migrations and holds the
    first revision, and is upgraded from there."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "persons" in tables:
            # made by create_all: with today's models (a benchmark's, a test's) it is at head already
            made_today = not compare_metadata(MigrationContext.configure(connection), Base.metadata)
            command.stamp(config, "head" if made_today else "0001")
        command.upgrade(config, revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
