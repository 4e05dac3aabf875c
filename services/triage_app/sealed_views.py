"""Every row the triage pages read, checked against what the audit trail sealed (`mash audit verify`).

The processes must write the rows the pages read (alerts, their history, the timeline), so the
database role they hold could change what a practitioner is shown: a rating lowered, a deadline
moved, a claimant swapped, a withheld value added to a view. Each row is therefore bound to a
signed entry: an alert revision to the hub's seal of it (`triage_store.sealed_alerts`), a person's
rating, claim and decision to the app's (`sealed_decisions`), a timeline row to the sharing entry
that released it (`sharing.sealed_values`). Rows from before sealing began are counted, not checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from mash.models import (
    AlertActionRecord,
    AlertBeforeSealingRow,
    AlertRecord,
    MergeBeforeSealingRow,
    SealingBeganRow,
    TimelineEventRecord,
)
from services.sharing import audit_store, sealed_values
from services.sharing.audit_chain import Sealed, digest
from services.sharing.audit_signing import AuditKeys, keyed_mac
from services.sharing.decision_record import HUB_DECIDER
from services.triage_app.sealed_decisions import ACTION_KIND, AUDIT_CHAIN, moment
from services.triage_store import sealed_alerts

CHUNK = 500


@dataclass
class Report:
    mismatches: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)
    unsealed_legacy: Counter[str] = field(default_factory=Counter)  # written before sealing began


@dataclass
class _AppRecords:
    """What the app sealed about one alert, oldest first."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    rerates: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)


Seal = tuple[dict[str, Any], Callable[..., str]]  # an entry's body, and the keyed digest of the key that signed it


def check(session: Session, keys: AuditKeys) -> Report:
    report = Report()
    seals = _hub_seals(session, keys)
    app = _app_records(session, keys)
    legacy = {r.alert_id: r.revision for r in session.scalars(select(AlertBeforeSealingRow))}
    began = session.get(SealingBeganRow, "alert_actions")
    through = began.through if began is not None else 0
    timeline = set(session.scalars(select(TimelineEventRecord.event_id)))
    try:
        alerts = list(session.scalars(select(AlertRecord).order_by(AlertRecord.alert_id)))
    except ValueError as exc:  # SQLite keeps any text in a JSON column
        report.mismatches.append(_unreadable("alerts", exc))
        alerts = None
    for alert in alerts or ():
        _check_alert(alert, seals.get(alert.alert_id, {}), app.get(alert.alert_id, _AppRecords()),
                     legacy.get(alert.alert_id), timeline, report)
    if alerts is not None:
        shown = {alert.alert_id for alert in alerts}
        for alert_id in sorted((set(seals) | {a for a, r in app.items() if r.actions}) - shown):
            report.mismatches.append(f"alert {alert_id}: sealed in the trail, but not in the queue: deleted")
    _check_history(session, app, through, set(legacy), report)
    try:
        _check_timeline(session, keys, _merges(session, keys), report)
    except ValueError as exc:
        report.mismatches.append(_unreadable("timeline_events", exc))
    return report


def _unreadable(table: str, exc: Exception) -> str:
    return (f"the {table} table holds a row that cannot be read ({type(exc).__name__}: {exc}): it was written "
            "outside the hub; find it with SQL, and restore it from the topics or a backup")


def _trusted(keys: AuditKeys, entry: Sealed) -> bool:
    return keys.problem(entry.chain, entry.seq, entry.hash, entry.signature, entry.legacy) is None


def _hub_seals(session: Session, keys: AuditKeys) -> dict[str, dict[int, Seal]]:
    """Each alert's sealed revisions, by revision."""
    found: dict[str, dict[int, Seal]] = {}
    for _, entry in audit_store.with_key_suffix(session, f"/{sealed_alerts.SEALER}"):
        held = keys.key_of(entry.signature)
        body = entry.record
        if _trusted(keys, entry) and held is not None and isinstance(body.get("revision"), int):
            found.setdefault(str(body.get("event_id")), {})[body["revision"]] = (body, partial(keyed_mac, held))
    return found


def _merges(session: Session, keys: AuditKeys) -> dict[str, str]:
    """Who each retired child became: the merges triage sealed as it applied them, and those applied
    before sealing began (recorded by migration 0008, read-only to the processes)."""
    merged = {retired: survivor for retired, survivor in  # a Result has keys(): dict() would misread it
              session.execute(select(MergeBeforeSealingRow.retired_person_id,
                                     MergeBeforeSealingRow.surviving_person_id))}
    for _, entry in audit_store.with_key_suffix(session, f"/{sealed_alerts.MERGER}"):
        if _trusted(keys, entry):
            merged[str(entry.record.get("event_id"))] = str(entry.record.get("person_id"))
    return merged


def _app_records(session: Session, keys: AuditKeys) -> dict[str, _AppRecords]:
    """The app's sealed records by alert, each whole (its digest is the one its signed entry names)."""
    found: dict[str, _AppRecords] = {}
    for _, entry in audit_store.with_key_suffix(session, f"/{AUDIT_CHAIN}"):
        if entry.chain != AUDIT_CHAIN or not _trusted(keys, entry) or entry.decisions is None \
                or entry.record.get("decisions_digest") != digest(entry.decisions):
            continue
        record = dict(orjson.loads(entry.decisions))
        mine = found.setdefault(str(record.get("alert_id")), _AppRecords())
        kind = record.get("kind")
        if kind == ACTION_KIND:
            mine.actions.append(record)
        elif kind == "rating_changed":
            mine.rerates.append(record)
        elif kind == "triage_decision":
            mine.decisions.append(record)
    return found


def _check_alert(alert: AlertRecord, revisions: dict[int, Seal], app: _AppRecords, legacy_revision: int | None,
                 timeline: set[str], report: Report) -> None:
    """One row of the queue: the hub's latest sealed revision, as sealed, under the person's rating,
    claim and decision the app sealed, with every event it names on the timeline."""
    report.checked["alerts"] += 1
    problems: list[str] = []
    latest = max(revisions, default=None)
    if latest is not None and latest > alert.revision:
        problems.append(f"it shows revision {alert.revision}, but the hub sealed revision {latest} since: rolled back")
    if alert.revision == legacy_revision:
        report.unsealed_legacy["alerts"] += 1
    else:
        body, mac = revisions.get(alert.revision, (None, None))
        rerated = app.rerates[-1] if app.rerates else None
        problems += sealed_alerts.differences(alert, body, mac, rerated)
        if alert.rag_set_by is not None and rerated is not None:
            problems += _escalation_problems(rerated, revisions)
        missing = sorted(set(alert.event_ids or ()) - timeline) if isinstance(alert.event_ids, list) else []
        problems += [f"its event {event_id} is not on the timeline: deleted" for event_id in missing]
    if app.actions or legacy_revision is None:
        problems += _claim_problems(alert, app.actions)
    decided = {_ms(d.get("at") or d.get("decided_at")) for d in app.decisions}
    if alert.decided_at is not None and _ms(alert.decided_at) not in decided and legacy_revision is None:
        problems.append("it shows a decision that no sealed decision records")
    if alert.decided_at is None and decided:
        problems.append("a sealed decision was recorded on it, but it shows none")
    report.mismatches += [f"alert {alert.alert_id}: {p}" for p in problems]


def _escalation_problems(rerated: dict[str, Any], revisions: dict[int, Seal]) -> list[str]:
    """A person's rating still standing must not have been cleared by a later escalation of the hub's."""
    at = rerated.get("alert_revision")
    if not isinstance(at, int):
        return []
    rating = {revision: sealed_alerts.hub_rating(mac, body) for revision, (body, mac) in revisions.items()}
    why = sealed_alerts.escalation_overridden(str(rerated.get("to")), rating.get(at),
                                              [rating[r] for r in sorted(rating) if r > at])
    return [why] if why else []


def _claim_problems(alert: AlertRecord, actions: list[dict[str, Any]]) -> list[str]:
    """Who holds the alert must be who its sealed history says holds it after its last line."""
    last = actions[-1] if actions else {}
    holder = last.get("claimed_by")
    if alert.claimed_by != holder:
        return [f"claimed by {alert.claimed_by!r}, its sealed history says {holder!r}"]
    if holder is not None and last.get("action") in ("claimed", "assigned") and \
            _ms(alert.claimed_at) != _ms(last.get("at")):
        return ["claimed_at is not the time its sealed history gives"]
    return []


def _check_history(session: Session, app: dict[str, _AppRecords], through: int, legacy: set[str],
                   report: Report) -> None:
    """Each alert's history lines: none added, removed or changed since sealing began. Only an alert
    that stood before then (recorded by migration 0008) may have lines from before it."""
    rows: dict[str, Counter[tuple[Any, ...]]] = {}
    for row in session.scalars(select(AlertActionRecord)):
        if row.id <= through and row.alert_id in legacy:
            report.unsealed_legacy["history lines"] += 1
            continue
        rows.setdefault(row.alert_id, Counter())[(row.action, row.actor, row.detail, _ms(row.at))] += 1
        report.checked["history lines"] += 1
    for alert_id in sorted(set(rows) | {a for a, r in app.items() if r.actions}):
        sealed = Counter((r.get("action"), r.get("by"), r.get("detail"), _ms(r.get("at")))
                         for r in app.get(alert_id, _AppRecords()).actions)
        stored = rows.get(alert_id, Counter())
        for line in sorted((stored - sealed).elements(), key=str):
            report.mismatches.append(f"alert {alert_id}: history line {line[0]} by {line[1]} ({line[2]!r}) "
                                     "has no sealed record")
        for line in sorted((sealed - stored).elements(), key=str):
            report.mismatches.append(f"alert {alert_id}: the sealed history line {line[0]} by {line[1]} "
                                     f"({line[2]!r}) is missing")


def _check_timeline(session: Session, keys: AuditKeys, merged: dict[str, str], report: Report) -> None:
    """Each row against the entry that released it. Which revision of a record stands (shown whole,
    the others marked amended) is taken from the entries' sealed order, not from the row's own
    `superseded_by`, which the processes write; so is whether it was withdrawn and whose it is."""
    released: dict[str, Sealed] = {}
    records: dict[str, list[tuple[str, str]]] = {}  # record -> (sealed order, event id) of each revision held
    for rows in _chunks(session):
        entries = audit_store.recorded(session, [r.event_id for r in rows])
        for row in rows:
            entry = _release(keys, entries, row.event_id)
            if entry is None:
                continue
            released[row.event_id] = entry
            body = entry.record
            order = str(body.get("revision_order") or body.get("revised_at") or "")
            records.setdefault(str(body.get("record_id") or row.event_id), []).append((order, row.event_id))
    latest = {event: max(held)[1] for held in records.values() for _, event in held}
    for rows in _chunks(session):
        for row in rows:
            report.checked["timeline events"] += 1
            entry = released.get(row.event_id)
            if entry is None:
                report.mismatches.append(f"timeline event {row.event_id}: no sharing entry signed by the hub's key "
                                         "released it")
                continue
            body = entry.record
            held = keys.key_of(entry.signature)
            standing = latest[row.event_id] == row.event_id and not body.get("withdrawn")
            shown = sealed_values.ShownEvent(row.event_id, row.event_type, row.source_agency, row.occurred_at,
                                             row.values, row.views, standing, row.withdrawn_fields)
            problems = sealed_values.differences(shown, body, list(orjson.loads(entry.decisions or "[]")),
                                                 partial(keyed_mac, held) if held else _no_key)
            if problems is None:
                report.unsealed_legacy["timeline events"] += 1
                continue
            problems += _standing_problems(row, body, latest[row.event_id], _survivor(merged, str(body["person_id"])))
            report.mismatches += [f"timeline event {row.event_id}: {p}" for p in problems]


def _standing_problems(row: TimelineEventRecord, body: dict[str, Any], latest: str, person: str) -> list[str]:
    found = []
    if bool(row.withdrawn) != bool(body.get("withdrawn")):
        found.append(f"withdrawn is {bool(row.withdrawn)}, sealed as {bool(body.get('withdrawn'))}")
    expected = None if latest == row.event_id else latest
    if row.superseded_by != expected:
        found.append(f"superseded_by is {row.superseded_by!r}, but the sealed order of its record's revisions "
                     f"makes it {expected!r}")
    if body.get("record_id") and row.record_id != body["record_id"]:
        found.append(f"it is filed under record {row.record_id}, released as a revision of {body['record_id']}")
    if row.person_id != person:
        found.append(f"it is on the timeline of {row.person_id}, but was released about {body.get('person_id')} "
                     f"(now {person})")
    return found


def _survivor(merged: dict[str, str], person: str) -> str:
    """Whom a person's records belong to now, through every merge since (a cycle ends where it began)."""
    seen = {person}
    while person in merged and merged[person] not in seen:
        person = merged[person]
        seen.add(person)
    return person


def _release(keys: AuditKeys, entries: dict[str, Sealed], event_id: str) -> Sealed | None:
    """The sharing entry the event was released under: the hub's, signed, its decision set whole."""
    base = f"{event_id}/{HUB_DECIDER}"
    for key in sorted(k for k in entries if k == base or k.startswith(f"{base}#")):
        entry = entries[key]
        if _trusted(keys, entry) and entry.decisions is not None and \
                entry.record.get("decisions_digest") == digest(entry.decisions):
            return entry
    return None


def _chunks(session: Session) -> Iterator[list[TimelineEventRecord]]:
    after = ""
    while True:
        rows = list(session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.event_id > after)
                                    .order_by(TimelineEventRecord.event_id).limit(CHUNK)))
        if not rows:
            return
        yield rows
        after = rows[-1].event_id


def _no_key(*_parts: str) -> str:
    return ""


def _ms(value: Any) -> int | None:
    zoned = moment(value)
    return None if zoned is None else int(zoned.timestamp() * 1000)
