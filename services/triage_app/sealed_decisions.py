"""A triage decision as the pages show it and the outbox sends it, against its sealed audit entry.

The app writes each decision twice in one transaction: a row in `triage_decisions` (what the
pages read and the outbox sends to the hub) and an entry on its audit chain naming the full record
by digest. Only the entry is append-only and signed, so the row is checked against it: by
`mash audit verify`, and by the outbox before the hub is told (a row edited in the database is
never sent as if it were the decision made).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from mash.models import TriageDecisionRecord
from services.sharing import audit_store
from services.sharing.audit_chain import Sealed, canonical, digest, seal
from services.sharing.audit_signing import AuditKeys

AUDIT_CHAIN = "triage-app"
ACTION_KIND = "alert_action"  # a line of the queue's history: claimed, released, assigned, re-rated, decided
CHECKED = {"outcome": "outcome", "rationale": "rationale", "decided_by": "by", "decided_role": "decided_role",
           "rag_at_decision": "rag_at_decision", "alert_id": "alert_id", "person_id": "person_id",
           "alert_revision": "alert_revision"}


def entry_key(decision_id: str) -> str:
    return f"{decision_id}/{AUDIT_CHAIN}"


FIRST_RELEASE_NAMES = {"decision_id": "id", "decided_by": "by", "decided_at": "at"}  # how 0.1's app sealed them


def differences(row: TriageDecisionRecord, sealed_record: dict[str, Any] | None, legacy: bool = False) -> list[str]:
    """What of the row differs from the record its audit entry sealed (pure). A decision sealed before
    signing began may be in the first release's shape, and its row may predate the alert_revision
    column (added empty by migration 0004): neither is a difference."""
    if sealed_record is None:
        return ["it has no sealed audit entry signed by an audit key"]
    if legacy and "id" not in sealed_record:
        sealed_record = {FIRST_RELEASE_NAMES.get(k, k): v for k, v in sealed_record.items()}
    checked = {c: k for c, k in CHECKED.items()
               if not (legacy and c == "alert_revision" and row.alert_revision is None)}
    found = [f"{column} is {getattr(row, column)!r}, sealed as {sealed_record.get(key)!r}"
             for column, key in checked.items() if getattr(row, column) != sealed_record.get(key)]
    if sealed_record.get("kind") != "triage_decision" or sealed_record.get("id") != row.decision_id:
        found.append("its audit entry is not this decision's")
    if moment(row.decided_at) != moment(sealed_record.get("at")):
        found.append(f"decided_at is {row.decided_at}, sealed as {sealed_record.get('at')}")
    return found


def seal_action(session: Session, keys: AuditKeys, record: dict[str, Any]) -> str:
    """One entry on the app's chain, signed, naming the action's full record (`kind`, `id`, `alert_id`,
    `person_id`, `alert_revision`, `by`, `at`, and what was done) by its digest; its audit ref."""
    text = canonical(record)
    body = {"event_id": record["alert_id"], "person_id": record["person_id"], "kind": record["kind"],
            "decided_by": record["by"], "decided_at": record["at"], "decisions_digest": digest(text)}
    (sealed,) = seal(AUDIT_CHAIN, audit_store.head(session, AUDIT_CHAIN), [body])
    signed = Sealed(sealed.chain, sealed.seq, sealed.prev_hash, sealed.hash, sealed.body, text,
                    keys.sign(sealed.chain, sealed.seq, sealed.hash))
    audit_store.append(session, [audit_store.Entry(signed, record["alert_id"], entry_key(record["id"]), digest(text))],
                       {digest(text): text})
    return f"{AUDIT_CHAIN}:{sealed.seq}"


def sealed_record(session: Session, decision_id: str, keys: AuditKeys) -> tuple[dict[str, Any] | None, bool]:
    """The record the decision's audit entry sealed, if there is one signed by an audit key and its
    record matches the digest the entry names; and whether it was sealed before signing began."""
    entry = audit_store.entry_by_key(session, entry_key(decision_id))
    if entry is None or entry.decisions is None or entry.chain != AUDIT_CHAIN:
        return None, False
    if keys.problem(entry.chain, entry.seq, entry.hash, entry.signature, entry.legacy) is not None:
        return None, False
    named = orjson.loads(entry.body).get("decisions_digest")
    return (dict(orjson.loads(entry.decisions)) if named == digest(entry.decisions) else None), entry.legacy


def check(session: Session, row: TriageDecisionRecord, keys: AuditKeys) -> None:
    """Raise if the row is not the decision its audit entry sealed."""
    problems = differences(row, *sealed_record(session, row.decision_id, keys))
    if problems:
        raise ValueError(f"decision {row.decision_id} is not as sealed in the audit trail: {'; '.join(problems)}")


def unsealed_decisions(session: Session, keys: AuditKeys) -> tuple[list[str], int]:
    """Every decision row that differs from its sealed entry, described; and how many were checked."""
    mismatches, checked = [], 0
    for row in session.scalars(select(TriageDecisionRecord).order_by(TriageDecisionRecord.decided_at)).all():
        checked += 1
        problems = differences(row, *sealed_record(session, row.decision_id, keys))
        if problems:
            mismatches.append(f"decision {row.decision_id} on alert {row.alert_id}: {'; '.join(problems)}")
    return mismatches, checked


def moment(value: Any) -> datetime | None:
    """A time as a row or a sealed record gives it (ISO text, or naive from SQLite: UTC), zoned."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
