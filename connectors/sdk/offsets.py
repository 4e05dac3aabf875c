"""Where each connector got to, per stream, saved only after the broker confirmed delivery.

Kept in SQL (SQLite by default, PostgreSQL in production) so a restarted connector resumes where
it stopped. A stream is one independently ordered part of a source: a file, a table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, inspect, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from mash.db import make_engine


class _Base(DeclarativeBase):
    pass


class ConnectorOffset(_Base):
    __tablename__ = "connector_offsets"

    connector: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream: Mapped[str] = mapped_column(String(256), primary_key=True)
    position: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OffsetStore:
    def __init__(self, url: str, connector: str) -> None:
        self._engine = make_engine(url)
        try:
            _Base.metadata.create_all(self._engine)
        except OperationalError:  # connectors sharing a store may race to create the table
            if not inspect(self._engine).has_table(ConnectorOffset.__tablename__):
                raise
        self._connector = connector

    def load(self) -> dict[str, dict[str, Any]]:
        with Session(self._engine) as session:
            rows = session.scalars(select(ConnectorOffset).where(ConnectorOffset.connector == self._connector))
            return {row.stream: row.position for row in rows}

    def save(self, positions: dict[str, dict[str, Any]]) -> None:
        if not positions:
            return
        now = datetime.now(UTC)
        with Session(self._engine) as session, session.begin():
            for stream, position in positions.items():
                row = session.get(ConnectorOffset, (self._connector, stream))
                if row is None:
                    session.add(ConnectorOffset(connector=self._connector, stream=stream, position=position,
                                                updated_at=now))
                else:
                    row.position, row.updated_at = position, now

    def close(self) -> None:
        self._engine.dispose()
