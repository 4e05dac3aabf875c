"""A database poll: read new and changed rows incrementally from an agency system's tables.

Each stream is a table or view with a cursor column (an updated-at time or a sequence) and a
unique key to break ties; the checkpoint is the last (cursor, key) confirmed, so a restart reads
exactly the rows after it. Works on any database SQLAlchemy reaches (SQLite, PostgreSQL, ...),
with bound parameters only.

An updated-at cursor is stamped when a transaction writes the row, not when it commits: a long
transaction can commit a row stamped before rows already read, and a cursor past it would skip it
for good. So rows stamped within `safety_lag_s` of now are left for a later poll, by which time
any transaction that stamped them has committed (or the database has ended it).

Record ids are namespaced by table: two tables (or views) with the same key value are two records,
never one (`record_scope`). Connectors before this named a row by the source system and its key
alone, so two tables sharing a key value gave one record id and one event id, and the second row
was taken for a revision (or a resubmission) of the first. Changing a running stream's ids would be
worse: every row touched after the upgrade would arrive as a new record beside its old one (the
child's timeline and score holding both, a withdrawal reaching only the new one). So the scope is
pinned in each stream's checkpoint: a stream first polled from now on is namespaced by its table
(or its `record_scope`); a stream whose checkpoint predates scopes keeps the ids it has been giving
(its key values are the only namespace, as before: the shipped views prefix theirs, "ATT-" and
"SG-", so theirs never collided). To move such a stream to scoped ids, accept that its rows start
again as new records, and reset its checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import DateTime, MetaData, Table, and_, create_engine, or_, select
from sqlalchemy.engine import Engine

from connectors.sdk.config import ConnectorConfig
from connectors.sdk.sources.base import IDLE, Item, Source, SourceRecord


class PollStream(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    table: str = Field(description="Table or view to read.")
    cursor: str = Field(description="Column that grows when a row is added or changed.")
    key: str = Field(description="Unique column that orders rows with the same cursor value.")
    record_scope: str | None = Field(None, description="What the rows' record ids are namespaced by, so "
                                     "two tables sharing a key value are two records (default: the table "
                                     "name). Fixed in the stream's checkpoint when it is first polled.")


class DatabasePollConfig(ConnectorConfig):
    url: SecretStr = Field(description="SQLAlchemy URL of the agency system's database (read-only user).")
    streams: list[PollStream] = Field(min_length=1, description="The tables or views to poll.")
    page_size: int = Field(1000, ge=1, description="Rows read per query.")
    timezone: str = Field("Europe/London", description="Zone of date-times stored without one.")
    follow: bool = Field(False, description="Keep polling instead of stopping when nothing is new.")
    poll_interval_s: float = Field(5.0, gt=0, description="How often a followed database is polled.")
    safety_lag_s: float = Field(60.0, ge=0, description="Rows whose date-time cursor is newer than this are "
                                "left for a later poll (longer than the source's longest write transaction).")


SCOPE = "scope"  # the position's (and so the checkpoint's) record scope


def record_scope(stream: PollStream, checkpoint: dict[str, Any] | None) -> str:
    """The namespace of a stream's record ids: the one its checkpoint pinned; "" (the source system
    and key alone, as before scopes) for a checkpoint from before them; for a stream not polled yet,
    its `record_scope`, or its table."""
    if checkpoint is not None:
        return str(checkpoint.get(SCOPE, ""))
    return stream.table if stream.record_scope is None else stream.record_scope


class DatabasePollSource(Source):
    def __init__(self, config: DatabasePollConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine or create_engine(config.url.get_secret_value())
        self.zone = ZoneInfo(config.timezone)
        self._limits: dict[str, Callable[[datetime], Any]] = {}  # per date-time cursor: a limit in its terms

    def items(self, checkpoints: dict[str, dict[str, Any]]) -> Iterator[Item]:
        tables = {s.table: Table(s.table, MetaData(), autoload_with=self.engine) for s in self.config.streams}
        positions = dict(checkpoints)
        while self.running:
            for stream in self.config.streams:
                for record in self._new_rows(tables[stream.table], stream, positions.get(stream.table)):
                    positions[stream.table] = record.position
                    yield record
                    if not self.running:
                        return
            yield IDLE
            if not self.config.follow:
                return
            time.sleep(self.config.poll_interval_s)

    def _new_rows(self, table: Table, stream: PollStream, after: dict[str, Any] | None) -> Iterator[SourceRecord]:
        position = {**(after or {}), SCOPE: record_scope(stream, after)}
        for row in self._pages(table, stream, position, empty_cursor=True):
            # a row with no cursor value cannot be ordered or resumed after: one dead letter each
            position["empty_key"] = _plain(row[stream.key])
            yield self._record(stream, row, dict(position), ValueError(
                f"its cursor column {stream.cursor!r} is empty: the row cannot be read in order; "
                "give it a value at the source"))
        for row in self._pages(table, stream, position, empty_cursor=False):
            position.update(cursor=_plain(row[stream.cursor]), key=_plain(row[stream.key]))
            yield self._record(stream, row, dict(position))

    def _pages(self, table: Table, stream: PollStream, position: dict[str, Any],
               empty_cursor: bool) -> Iterator[dict[str, Any]]:
        """Rows after `position` (which the caller moves on as it reads), a page at a time: those
        with an empty cursor in key order, or the others in (cursor, key) order."""
        cursor, key = table.c[stream.cursor], table.c[stream.key]
        while True:
            if empty_cursor:
                query = select(table).where(cursor.is_(None)).order_by(key).limit(self.config.page_size)
                if "empty_key" in position:
                    query = query.where(key > _restore(position["empty_key"]))
            else:
                query = select(table).where(cursor.is_not(None)).order_by(cursor, key).limit(self.config.page_size)
                settled = self._settled_before(table, stream)
                if settled is not None:
                    query = query.where(cursor <= settled)
                if "cursor" in position:
                    last_cursor, last_key = _restore(position["cursor"]), _restore(position["key"])
                    query = query.where(or_(cursor > last_cursor, and_(cursor == last_cursor, key > last_key)))
            with self.engine.connect() as connection:
                rows = [dict(row._mapping) for row in connection.execute(query)]
            yield from rows
            if len(rows) < self.config.page_size:
                return

    def _record(self, stream: PollStream, row: dict[str, Any], position: dict[str, Any],
                error: Exception | None = None) -> SourceRecord:
        fields = {name: self._text(value) for name, value in row.items()}
        raw = json.dumps(fields, sort_keys=True, default=str).encode()
        return SourceRecord(stream.table, position, f"{stream.table}:{row[stream.key]}", raw,
                            None if error else fields, error)

    def _settled_before(self, table: Table, stream: PollStream) -> Any:
        """The newest cursor value safe to read now, for a date-time cursor (None for a sequence),
        in the column's own terms: a naive column in the configured zone, as its values are read;
        a text column (SQLite keeps date-times as text) in the format of its values."""
        form = self._limits.get(stream.table) or self._cursor_format(table, stream)
        if form is None:
            return None
        self._limits[stream.table] = form
        limit = datetime.now(self.zone) - timedelta(seconds=self.config.safety_lag_s)
        return form(limit)

    def _cursor_format(self, table: Table, stream: PollStream) -> Callable[[datetime], Any] | None:
        column = table.c[stream.cursor]
        if isinstance(column.type, DateTime):
            if column.type.timezone:
                return lambda limit: limit
            return _naive
        with self.engine.connect() as connection:
            sample = connection.execute(select(column).where(column.is_not(None)).limit(1)).scalar()
        if not isinstance(sample, str) or len(sample) < 11:
            return None  # a sequence, or nothing yet to tell by (the next page looks again)
        try:
            shape = datetime.fromisoformat(sample)
        except ValueError:
            return None
        separator = sample[10]

        def as_text(limit: datetime) -> str:
            moment = limit.astimezone(shape.tzinfo) if shape.tzinfo else _naive(limit)
            return moment.isoformat(sep=separator)
        return as_text

    def _text(self, value: Any) -> Any:
        """Database values as the mapping helpers take them: text, numbers, booleans, None."""
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=self.zone)).isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value


def _naive(limit: datetime) -> datetime:
    """A naive stamp may be local time (as the poll reads it) or UTC (as `parse_revised_at` and
    SQLite's CURRENT_TIMESTAMP take it): the earlier of the two readings, so the lag holds for both."""
    return min(limit.replace(tzinfo=None), limit.astimezone(ZoneInfo("UTC")).replace(tzinfo=None))


def _plain(value: Any) -> Any:
    """A cursor or key value as JSON can keep it (checkpoints are JSON), with its type."""
    if isinstance(value, datetime | date):  # a datetime is a date: its own name tells them apart
        return {"type": type(value).__name__, "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"type": "Decimal", "value": str(value)}
    return value


def _restore(value: Any) -> Any:
    """The value `_plain` kept, as the database driver expects it back."""
    if not isinstance(value, dict):
        return value
    kinds: dict[str, Any] = {"datetime": datetime.fromisoformat, "date": date.fromisoformat, "Decimal": Decimal}
    return kinds[value["type"]](value["value"])
