"""Triage state in SQL: each person's correlation state, loaded and saved once per batch.

Versioned rows make concurrent writers safe: a save names the version it read, and if another
worker wrote the person in between (two owners for a moment during a rebalance), the save fails
with `StaleState` and the caller redoes its batch on what is there now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import orjson
from sqlalchemy import Table, and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mash.models import TriageStateRecord
from services.messages import Contention
from services.triage.correlation import PersonState

CHUNK = 500  # ids per IN list: well inside SQLite's and PostgreSQL's parameter limits
MAX_MERGE_HOPS = 20  # a chain of merges longer than this is a loop, not history


class StaleState(Contention):
    """Another worker saved one of this batch's persons after it was read: redo the batch."""


@dataclass
class Held:
    """A person's state as read, with the version it was read at (0: no row yet)."""

    state: PersonState
    version: int
    changed: bool = False


def load(session: Session, person_ids: Iterable[str]) -> dict[str, Held]:
    """The states of these persons and of every survivor their merges point to."""
    held: dict[str, Held] = {}
    wanted = set(person_ids)
    for _ in range(MAX_MERGE_HOPS):
        wanted -= held.keys()
        if not wanted:
            break
        found = _read(session, wanted)
        for person_id in wanted:
            held[person_id] = found.get(person_id, Held(PersonState(), 0))
        wanted = {h.state.merged_into for h in found.values() if h.state.merged_into}
    return held


def current(held: Mapping[str, Held], person_id: str) -> str:
    """Whom a person's events belong to now: the person, or the survivor of its merges."""
    seen = {person_id}
    while (onward := held[person_id].state.merged_into) and onward in held and onward not in seen:
        seen.add(onward)
        person_id = onward
    return person_id


def save(session: Session, held: Mapping[str, Held]) -> None:
    """Write every changed state; `StaleState` if any was written by someone else since it was read."""
    now = datetime.now(UTC)
    changed = sorted((p, h) for p, h in held.items() if h.changed)  # in key order: two writers lock rows alike
    fresh = [{"person_id": p, "version": 1, "state": _text(h.state), "updated_at": now}
             for p, h in changed if h.version == 0]
    moved = [{"p": p, "v": h.version, "s": _text(h.state), "u": now} for p, h in changed if h.version > 0]
    table = cast(Table, TriageStateRecord.__table__)
    connection = session.connection()
    if fresh:
        try:
            connection.execute(insert(table), fresh)
        except IntegrityError as exc:  # someone made the row first
            raise StaleState("a person's state was created by another worker") from exc
    if moved:
        statement = (update(table).where(and_(table.c.person_id == bindparam("p"), table.c.version == bindparam("v")))
                     .values(version=bindparam("v") + 1, state=bindparam("s"), updated_at=bindparam("u")))
        result = connection.execute(statement, moved)
        if result.rowcount != len(moved):
            raise StaleState("a person's state was saved by another worker")


def _read(session: Session, person_ids: set[str]) -> dict[str, Held]:
    ids = sorted(person_ids)
    found: dict[str, Held] = {}
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(select(TriageStateRecord.person_id, TriageStateRecord.version, TriageStateRecord.state)
                               .where(TriageStateRecord.person_id.in_(ids[start:start + CHUNK])))
        for person_id, version, text in rows:
            found[person_id] = Held(PersonState.from_json(orjson.loads(text)), version)
    return found


def _text(state: PersonState) -> str:
    """`state.to_json()` as text; orjson writes the dataclasses itself, several times faster than asdict."""
    return orjson.dumps(state).decode()
