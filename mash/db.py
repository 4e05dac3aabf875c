"""Database engines for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import logging
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
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from mash.db_roles import grant_runtime, runtime_role
from mash.models import Base
from mash.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
WAL_KEPT_BYTES = 64 * 2**20
HUB_AUTOCHECKPOINT_PAGES = 10_000  # the backstop behind `WalCheckpoints` (40 MB of log)
log = logging.getLogger("mash.db")


def make_engine(url: str, checkpoints_apart: bool = False) -> Engine:
    """`checkpoints_apart`: on SQLite, a `WalCheckpoints` thread copies the WAL back into the
    database file, commits only past a backstop (see there). For the hub's stages."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json, json_deserializer=orjson.loads,
                               hide_parameters=True)
        event.listen(engine, "connect", partial(_sqlite_pragmas, autocheckpoint=HUB_AUTOCHECKPOINT_PAGES
                                                if checkpoints_apart else 1000))
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
    cursor.execute(f"PRAGMA journal_size_limit={WAL_KEPT_BYTES}")  # a log restarted is trimmed back to this
    cursor.close()


class WalCheckpoints:
    """Copies SQLite's write-ahead log back into the database file, in a thread of its own.

    By default the commit that takes the log past 1,000 pages (4 MB) copies it and fsyncs, inside
    a stage's batch; the hub writes about 100 KB of log per event on small batches, so that was a
    checkpoint every few batches. Here a PASSIVE checkpoint runs every `every_s` in this thread: it
    waits for nobody and blocks no one, and SQLite releases Python's lock while it runs, so the
    copy overlaps the stages' work. The hub's connections keep an automatic checkpoint as a
    backstop at 10,000 pages (`HUB_AUTOCHECKPOINT_PAGES`): a log this thread alone cannot start
    again while writers keep committing (seen: 7 GB in two minutes without a backstop) is copied
    by a commit as before, never by a checkpoint that waits for readers and so holds writers up.
    Errors are logged and the next round tries again; the backstop holds meanwhile.
    """

    def __init__(self, engine: Engine, every_s: float = 0.05) -> None:
        self._engine, self._every_s = engine, every_s
        self._stop = threading.Event()
        self.runs = 0
        threading.Thread(target=self._loop, name="wal-checkpoints", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                with self._engine.connect() as connection:  # from the pool: no new SQLite connection a round
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                self.runs += 1
            except Exception as exc:  # noqa: BLE001 - the backstop copies the log meanwhile
                log.warning("WAL checkpoint failed (%s); trying again", type(exc).__name__)
                self._stop.wait(1.0)


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this code was written for."""


def engine_for(settings: Settings, checkpoints_apart: bool = False) -> Engine:
    """An engine on the hub's database, for a process: it never migrates a server database (the
    schema owner does, with `mash db upgrade`) and refuses one not at the code's schema. The
    embedded SQLite file, which has no roles, is brought up to date here."""
    if settings.sqlalchemy_url().startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url(), checkpoints_apart)
    if engine.dialect.name == "sqlite":
        _upgrade_racing(engine)
        return engine
    try:
        current, head = schema_revisions(engine)
    except ProgrammingError as exc:  # the schema version is not readable as this role: no grants yet
        engine.dispose()
        raise SchemaNotCurrent(
            f"cannot read the database's schema version as this role ({str(exc.orig).splitlines()[0]}): run "
            "`mash db upgrade` as the schema owner (MASH_DATABASE_OWNER_URL); it grants the processes' role") from None
    if current != head:
        engine.dispose()
        known = current is None or _known_revision(current)
        raise SchemaNotCurrent(
            f"the database schema is at {current or 'nothing (empty)'}; this code needs {head}. Run "
            "`mash db upgrade` first, as the schema owner (MASH_DATABASE_OWNER_URL): processes never migrate."
            if known else f"the database schema ({current}) is newer than this code ({head}): run the newer release")
    return engine


def db_upgrade(settings: Settings) -> tuple[str | None, str, list[str]]:
    """`mash db upgrade`: the schema to the code's, as its owner; then, on PostgreSQL, the
    processes' role granted least privilege. (revision before, revision now, grants run)"""
    if settings.owner_url().startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    role = runtime_role(settings.sqlalchemy_url(), settings.owner_url(), settings.database_runtime_role)
    engine = make_engine(settings.owner_url())
    try:
        before, _ = schema_revisions(engine)
        try:
            _upgrade_racing(engine)
        except ProgrammingError as exc:
            raise SchemaNotCurrent(
                f"cannot migrate as this role ({str(exc.orig).splitlines()[0]}): run `mash db upgrade` as the "
                "schema owner (MASH_DATABASE_OWNER_URL)") from None
        grants: list[str] = []
        if engine.dialect.name == "postgresql" and role is None:
            log.warning("the processes connect as the schema owner: they could rewrite the audit trail; give them "
                        "a role of their own (MASH_DATABASE_URL) and the owner's URL to MASH_DATABASE_OWNER_URL")
        if engine.dialect.name == "postgresql" and role:
            with engine.begin() as connection:
                grants = grant_runtime(connection, role)
        return before, schema_revisions(engine)[1], grants
    finally:
        engine.dispose()


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """The database's schema revision (None: never migrated) and the code's."""
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    assert head is not None
    return current, head


def _known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic says "unknown" by raising
        return False


def _upgrade_racing(engine: Engine) -> None:
    for attempt in range(1, 4):
        try:
            upgrade(engine)
            return
        except DBAPIError:  # several processes starting on a new database race to create it: the loser looks again
            if attempt == 3:
                raise
            time.sleep(1.0 * attempt)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`. A database without a version but with tables was made by
    create_all: with today's models it is at head; otherwise it predates migrations and holds the
    first revision, and is upgraded from there."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "alembic_version" not in tables and "persons" in tables:
            # made by create_all: with today's models (a benchmark's, a test's) it is at head already
            made_today = not compare_metadata(MigrationContext.configure(connection), Base.metadata)
            command.stamp(config, "head" if made_today else "0001")
        command.upgrade(config, revision)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
