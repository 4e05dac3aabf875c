"""The audit trail in SQL: append sealed records, find an event's decisions, read chains back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from mash.models import AuditRecordRow
from services.sharing.audit_chain import Head, Sealed

CHUNK = 500


@dataclass(frozen=True)
class Entry:
    """A sealed record with what indexes it."""

    sealed: Sealed
    event_id: str
    role: str
    key: str


def recorded(session: Session, keys: Sequence[str]) -> dict[str, Sealed]:
    """Decisions already recorded under these keys (a redelivered event's)."""
    found: dict[str, Sealed] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start:start + CHUNK]
        rows = session.execute(select(AuditRecordRow).where(AuditRecordRow.decision_key.in_(chunk)))
        found.update({row.decision_key: _sealed(row) for row in rows.scalars()})
    return found


def head(session: Session, chain: str) -> Head:
    last = session.execute(select(AuditRecordRow.seq, AuditRecordRow.hash).where(AuditRecordRow.chain == chain)
                           .order_by(AuditRecordRow.seq.desc()).limit(1)).first()
    return Head(int(last[0]), str(last[1])) if last else Head()


def append(session: Session, entries: Sequence[Entry]) -> None:
    if entries:
        session.execute(insert(AuditRecordRow), [
            {"chain": e.sealed.chain, "seq": e.sealed.seq, "prev_hash": e.sealed.prev_hash, "hash": e.sealed.hash,
             "event_id": e.event_id, "recipient_role": e.role, "decision_key": e.key, "body": e.sealed.body}
            for e in entries])


def for_event(session: Session, event_id: str) -> list[Sealed]:
    rows = session.execute(select(AuditRecordRow).where(AuditRecordRow.event_id == event_id)
                           .order_by(AuditRecordRow.position))
    return [_sealed(row) for row in rows.scalars()]


def read_chains(session: Session, batch: int = 5000) -> Iterator[Sealed]:
    """Every record, chain by chain in sequence order, streamed."""
    rows = session.execute(select(AuditRecordRow.chain, AuditRecordRow.seq, AuditRecordRow.prev_hash,
                                  AuditRecordRow.hash, AuditRecordRow.body)
                           .order_by(AuditRecordRow.chain, AuditRecordRow.seq)
                           .execution_options(yield_per=batch))
    for chain, seq, prev_hash, digest, body in rows:
        yield Sealed(chain, int(seq), prev_hash, digest, body)


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AuditRecordRow)).scalar_one())


def _sealed(row: AuditRecordRow) -> Sealed:
    return Sealed(row.chain, int(row.seq), row.prev_hash, row.hash, row.body)
