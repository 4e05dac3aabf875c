"""Every alert revision the hub writes, sealed in the audit trail; and a stored alert checked against it.

The queue and the alert page read the `alerts` table, which the processes must update (each hub
revision; a person's claim, re-rating and decision). So the triage stage seals each revision it
writes, in the same transaction, as an entry on a chain of its own (`alerts-<topic>-p<N>`, signed
with the hub's key): keyed digests of its columns, so the trail shows nothing of the alert. The
person's columns are sealed by the app (`triage_app.sealed_decisions`). `mash audit verify` then
checks every row: a rating, score, reason, deadline or claimant changed in the database shows.

The digests are three, because a rating a person set stands over the hub's later revisions: the
columns other than the rating and its clock, the hub's rating, and the hub's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from services.sharing import audit_store
from services.sharing.audit_chain import Sealed, canonical, seal
from services.sharing.audit_signing import AuditKeys
from services.triage_store.store import HUB_COLUMNS, RAG_RANK

SEALER = "hub:triage"
MERGER = "hub:merge"  # a merge as triage applied it: whose timeline a retired child's events move to
RATING = ("rag",)
CLOCK = ("due_at", "at_risk_at")
COLUMNS = tuple(c for c in HUB_COLUMNS if c not in RATING + CLOCK)


def entry_key(alert_id: str, revision: int) -> str:
    return f"{alert_id}#{revision}/{SEALER}"


def chain_for(topic: str, partition: int) -> str:
    """A chain per input partition (by topic), so workers holding different partitions never contend."""
    return f"alerts-{topic.rsplit('.', 2)[-2] if topic.count('.') >= 2 else topic}-p{partition}"


def macs(mac: Callable[..., str], alert: Mapping[str, Any]) -> dict[str, str]:
    """The keyed digests of an alert revision's columns, as written (datetimes to the millisecond)."""
    alert_id, revision = str(alert["alert_id"]), str(alert["revision"])
    return {part: mac("alert", alert_id, revision, part, canonical({c: _plain(alert.get(c)) for c in columns}))
            for part, columns in (("columns", COLUMNS), ("rating", RATING), ("clock", CLOCK))}


Pending = tuple[dict[str, Any], str, str]  # an entry's body, its key, the digest it is indexed by


def revisions(keys: AuditKeys, written: Sequence[Mapping[str, Any]]) -> list[Pending]:
    """An entry for each alert revision written."""
    return [({"kind": "alert_revision", "event_id": a["alert_id"], "person_id": a["person_id"],
              "revision": a["revision"], "macs": (sealed := macs(keys.mac, a))},
             entry_key(a["alert_id"], a["revision"]), sealed["columns"]) for a in written]


def merges(session: Session, keys: AuditKeys, moves: Sequence[tuple[str, str]]) -> list[Pending]:
    """An entry for each merge this batch applied (retired, survivor), once: `verify` takes whose
    timeline an event may be on from these, not from `person_merges`, which the processes write."""
    wanted = {f"{retired}/{MERGER}": (retired, survivor) for retired, survivor in moves}
    done = {e.record.get("event_id") for e in audit_store.by_keys(session, list(wanted))} if wanted else set()
    return [({"kind": "person_merged", "event_id": retired, "person_id": survivor}, key,
             keys.mac("merge", retired, survivor))
            for key, (retired, survivor) in wanted.items() if retired not in done]


def append_signed(session: Session, keys: AuditKeys, chain: str, pending: Sequence[Pending]) -> list[Sealed]:
    """The entries appended to the chain's head, signed with the hub's key, in one statement; what was sealed."""
    if not pending:
        return []
    made = []
    bodies = [body for body, _, _ in pending]
    for record, (body, key, named) in zip(seal(chain, audit_store.head(session, chain), bodies), pending,
                                          strict=True):
        signed = Sealed(record.chain, record.seq, record.prev_hash, record.hash, record.body, None,
                        keys.sign(record.chain, record.seq, record.hash))
        made.append(audit_store.Entry(signed, body["event_id"], key, named))
    audit_store.append(session, made, {})
    return [e.sealed for e in made]


def seal_revisions(session: Session, keys: AuditKeys, chain: str, written: Sequence[Mapping[str, Any]]
                   ) -> list[Sealed]:
    """The alert revisions written, sealed on the chain."""
    return append_signed(session, keys, chain, revisions(keys, written))


def sealed_already(session: Session, revisions: Sequence[tuple[str, int]]) -> list[Sealed]:
    """The entries of revisions sealed before (a redelivered batch's): sent to the topic again."""
    keys = [entry_key(alert_id, revision) for alert_id, revision in dict.fromkeys(revisions)]
    return audit_store.by_keys(session, keys)


def differences(row: Any, body: Mapping[str, Any] | None, mac: Callable[..., str] | None,
                rerated: Mapping[str, Any] | None) -> list[str]:
    """What of a stored alert's hub columns differs from its revision's sealed entry (pure). `rerated`:
    the latest re-rating the app sealed for it, which must be what stands when a person's rating does."""
    if body is None or mac is None:
        return [f"revision {row.revision} has no sealed audit entry signed by the hub's key"]
    sealed = body.get("macs") or {}
    stored = {c: getattr(row, c) for c in HUB_COLUMNS}
    person_rated = row.rag_set_by is not None
    if person_rated:
        stored["rag"] = row.hub_rag
    found = []
    if row.rag_rank != RAG_RANK.get(row.rag):
        found.append(f"its place in the queue (rag_rank {row.rag_rank}) is not its rating's ({row.rag})")
    wanted = macs(mac, stored)
    if wanted["columns"] != sealed.get("columns"):
        found.append("its reasons, score, indicators, events or times are not the ones the hub sealed")
    if wanted["rating"] != sealed.get("rating"):
        found.append(f"the hub's rating {'(hub_rag) ' if person_rated else ''}is not the one it sealed")
    if person_rated:
        return found + _person_rating_problems(row, rerated)
    if wanted["clock"] != sealed.get("clock"):
        found.append("its deadline or at-risk time is not the one the hub sealed")
    if row.hub_rag is not None:
        found.append("it keeps the hub's rating aside, but no person's rating stands")
    return found


def _person_rating_problems(row: Any, rerated: Mapping[str, Any] | None) -> list[str]:
    """A person's rating standing over the hub's must be the latest re-rating the app sealed."""
    if rerated is None:
        return [f"it stands at {row.rag} set by {row.rag_set_by}, which no sealed re-rating records"]
    expected = {"rag": rerated.get("to"), "rag_set_by": rerated.get("by"), "rag_set_at": _time(rerated.get("at"))}
    if "due_at" in rerated:  # re-ratings sealed before their clock was are checked without it
        expected.update(due_at=_time(rerated.get("due_at")), at_risk_at=_time(rerated.get("at_risk_at")))
    return [f"{column} is {getattr(row, column)!r}, the sealed re-rating says {value!r}"
            for column, value in expected.items() if _plain(getattr(row, column)) != value]


def hub_rating(mac: Callable[..., str], body: Mapping[str, Any]) -> str | None:
    """The rating a sealed revision gave (its digest tried against each of the three)."""
    sealed = (body.get("macs") or {}).get("rating")
    for rag in RAG_RANK:
        if macs(mac, {"alert_id": body.get("event_id"), "revision": body.get("revision"), "rag": rag})["rating"] \
                == sealed:
            return rag
    return None


def escalation_overridden(person_rag: str, at_rerate: str | None, later: Sequence[str | None]) -> str | None:
    """Why a person's rating can no longer stand (pure): the hub's later revisions, in order, rated the
    child more urgently than both that person and the hub itself had (`store._revision_over`'s rule),
    which clears it. None when it still stands."""
    before = at_rerate
    for rag in later:
        if rag is None or before is None:
            before = rag
            continue
        if RAG_RANK[rag] < min(RAG_RANK[person_rag], RAG_RANK[before]):
            return (f"the hub rated it {rag} after {person_rag} was set over its {before}: that escalation clears a "
                    "person's rating, yet the person's rating is shown")
        before = rag
    return None


def _plain(value: Any) -> Any:
    """A column as the digest takes it: times in milliseconds (as stored, whatever the database's zone)."""
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    return value


def _time(value: Any) -> Any:
    """A time as a sealed record gives it (ISO text) in milliseconds."""
    try:
        return _plain(datetime.fromisoformat(value)) if isinstance(value, str) else value
    except ValueError:
        return value
