"""The audit trail in SQL: append sealed entries and their decision sets, find an event's
entries, read chains back. Entries are read with the decision set each names beside them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Table, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mash.models import AuditDecisionSetRow, AuditRecordRow, AuditSigningBeganRow, AuditTopicCursorRow
from services.sharing.audit_chain import Head, Sealed

CHUNK = 500
ENTRIES: Table = AuditRecordRow.__table__  # type: ignore[assignment]
SETS: Table = AuditDecisionSetRow.__table__  # type: ignore[assignment]
SIGNING_BEGAN: Table = AuditSigningBeganRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Entry:
    """A sealed entry with what indexes it."""

    sealed: Sealed
    event_id: str
    key: str
    decisions_digest: str
    record_id: str | None = None


def _with_sets(*columns: Any) -> Any:
    return (select(*columns, ENTRIES.c.signature, ENTRIES.c.chain, ENTRIES.c.seq,
                   ENTRIES.c.prev_hash, ENTRIES.c.hash, ENTRIES.c.body, SETS.c.body)
            .select_from(ENTRIES.outerjoin(SETS, SETS.c.digest == ENTRIES.c.decisions_digest)))


def _sealed(row: Sequence[Any], unsigned_through: Mapping[str, int]) -> Sealed:
    signature, chain, seq, prev_hash, digest, body, decisions = row[-7:]
    return Sealed(chain, int(seq), prev_hash, digest, body, decisions, signature,
                  legacy=signature is None and int(seq) <= unsigned_through.get(chain, 0))


def unsigned_through(session: Session) -> dict[str, int]:
    """Each chain's last sequence number sealed before entries were signed (none: all must be)."""
    return {chain: int(seq) for chain, seq in session.execute(select(SIGNING_BEGAN.c.chain,
                                                                     SIGNING_BEGAN.c.unsigned_through))}


def recorded(session: Session, event_ids: Sequence[str]) -> dict[str, Sealed]:
    """Entries already recorded for these events (a redelivered event's), by decision key."""
    found: dict[str, Sealed] = {}
    unique = list(dict.fromkeys(event_ids))
    through = unsigned_through(session) if unique else {}
    for start in range(0, len(unique), CHUNK):
        rows = session.execute(_with_sets(ENTRIES.c.decision_key)
                               .where(ENTRIES.c.event_id.in_(unique[start:start + CHUNK])))
        found.update({row[0]: _sealed(row, through) for row in rows})
    return found


def head(session: Session, chain: str) -> Head:
    last = session.execute(select(ENTRIES.c.seq, ENTRIES.c.hash).where(ENTRIES.c.chain == chain)
                           .order_by(ENTRIES.c.seq.desc()).limit(1)).first()
    return Head(int(last[0]), str(last[1])) if last else Head()


def append(session: Session, entries: Sequence[Entry], sets: Mapping[str, str]) -> None:
    """The entries, and the decision sets they name that the store may not have yet."""
    connection = session.connection()  # Core, not the ORM: a batch of plain rows, no unit of work
    if sets:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(SETS).on_conflict_do_nothing(),
                           [{"digest": d, "body": text} for d, text in sets.items()])
    if entries:
        connection.execute(insert(ENTRIES), [
            {"chain": e.sealed.chain, "seq": e.sealed.seq, "prev_hash": e.sealed.prev_hash, "hash": e.sealed.hash,
             "event_id": e.event_id, "decision_key": e.key, "decisions_digest": e.decisions_digest,
             "body": e.sealed.body, "record_id": e.record_id, "signature": e.sealed.signature} for e in entries])


def published_through(session: Session) -> dict[str, int]:
    """How far each chain written in SQL says it was published to the topic (the outbox's cursor)."""
    return {row.chain: int(row.seq) for row in session.scalars(select(AuditTopicCursorRow))}


def sets_differing(session: Session, sets: Mapping[str, str]) -> list[str]:
    """The digests among `sets` whose stored body is not the one given (someone stored it first)."""
    found = []
    names = list(sets)
    for start in range(0, len(names), CHUNK):
        for name, body in session.execute(select(SETS.c.digest, SETS.c.body)
                                          .where(SETS.c.digest.in_(names[start:start + CHUNK]))):
            if body != sets[name]:
                found.append(name)
    return found


def of_records(session: Session, record_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The entries already recorded for these agency records (each revision's), as their bodies."""
    found: dict[str, list[dict[str, Any]]] = {}
    unique = list(dict.fromkeys(record_ids))
    for start in range(0, len(unique), CHUNK):
        for record_id, body in session.execute(select(ENTRIES.c.record_id, ENTRIES.c.body)
                                               .where(ENTRIES.c.record_id.in_(unique[start:start + CHUNK]))):
            found.setdefault(record_id, []).append(orjson.loads(body))
    return found


def for_event(session: Session, event_id: str) -> list[Sealed]:
    through = unsigned_through(session)
    rows = session.execute(_with_sets().where(ENTRIES.c.event_id == event_id).order_by(ENTRIES.c.position))
    return [_sealed(row, through) for row in rows]


def entry_by_key(session: Session, key: str) -> Sealed | None:
    row = session.execute(_with_sets().where(ENTRIES.c.decision_key == key)).first()
    return _sealed(row, unsigned_through(session)) if row else None


def by_keys(session: Session, keys: Sequence[str]) -> list[Sealed]:
    """The entries recorded under these keys, in chain order (a redelivered batch's, to send again)."""
    through = unsigned_through(session) if keys else {}
    found = []
    for start in range(0, len(keys), CHUNK):
        found += [_sealed(row, through) for row in session.execute(
            _with_sets().where(ENTRIES.c.decision_key.in_(keys[start:start + CHUNK])))]
    return sorted(found, key=lambda e: (e.chain, e.seq))


def with_key_suffix(session: Session, suffix: str) -> Iterator[tuple[str, Sealed]]:
    """Every entry whose key ends so (one writer's kind of entry), with its key; for `audit verify`."""
    through = unsigned_through(session)
    rows = session.execute(_with_sets(ENTRIES.c.decision_key).where(ENTRIES.c.decision_key.endswith(suffix))
                           .order_by(ENTRIES.c.chain, ENTRIES.c.seq).execution_options(yield_per=5000))
    for row in rows:
        yield row[0], _sealed(row, through)


def read_chains(session: Session, batch: int = 5000) -> Iterator[Sealed]:
    """Every entry with its decision set, chain by chain in sequence order, streamed."""
    through = unsigned_through(session)
    rows = session.execute(_with_sets().order_by(ENTRIES.c.chain, ENTRIES.c.seq)
                           .execution_options(yield_per=batch))
    for row in rows:
        yield _sealed(row, through)


def read_chain_after(session: Session, chain: str, seq: int, limit: int) -> list[Sealed]:
    """One chain's entries after `seq`, in order, with their decision sets (for the topic)."""
    through = unsigned_through(session)
    rows = session.execute(_with_sets().where(ENTRIES.c.chain == chain, ENTRIES.c.seq > seq)
                           .order_by(ENTRIES.c.seq).limit(limit))
    return [_sealed(row, through) for row in rows]


def hash_at(session: Session, chain: str, seq: int) -> str | None:
    """The hash of one chain's entry at `seq`, if the store has it."""
    return session.execute(select(ENTRIES.c.hash).where(ENTRIES.c.chain == chain, ENTRIES.c.seq == seq)).scalar()


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(ENTRIES)).scalar_one())
