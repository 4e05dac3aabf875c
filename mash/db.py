"""Database engines for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from mash.models import Base
from mash.settings import Settings


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=_json, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: an error's message must not quote a row's values (children's details) into a log
    return create_engine(url, pool_pre_ping=True, json_serializer=_json, hide_parameters=True)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the demo's reader count rows while the hub writes; foreign keys are off by
    # default in SQLite and on in PostgreSQL, so turn them on for the same behaviour. In WAL,
    # synchronous=NORMAL is still durable across a process crash (fsync at checkpoints); a page
    # cache of 256 MB keeps a million-person index's hot pages in memory (the default is 2 MB).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-262144")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_for(settings: Settings) -> Engine:
    if settings.sqlalchemy_url().startswith("sqlite:///"):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url())
    Base.metadata.create_all(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
