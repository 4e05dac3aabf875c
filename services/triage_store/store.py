"""Writes alerts, event outcomes and the shared events of the timeline to SQL, idempotently.

Kafka delivers at least once, so the same alert revision, outcome or shared event may arrive
twice: an outcome and a timeline event are stored once per event_id, and an alert's hub columns
only move forward in revision (the triage app's columns, claim and decision, are never touched).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from mash.models import AlertRecord, EventOutcomeRecord, TimelineEventRecord
from mash.revisions import revision_ms, revision_time
from services.messages import Contention

RAG_RANK = {"RED": 0, "AMBER": 1, "GREEN": 2}
HUB_TIMES = ("opened_at", "updated_at", "clock_started_at", "at_risk_at", "due_at")
CHUNK = 500  # keys per IN list
LONDON = ZoneInfo("Europe/London")  # the partnership's dates, as the app shows them
# The hub's columns of an alert (uk.mash.hub.Alert); the rest of the row is the triage app's.
HUB_COLUMNS = ("alert_id", "person_id", "revision", "status", "rag", "reasons", "agencies", "event_ids", "opened_at",
               "updated_at", "score", "indicators", "scoring_version", "profile", *HUB_TIMES[2:], "review", "follows",
               "joined")
HUB_DEFAULTS: dict[str, Any] = {"score": 0, "indicators": [], "scoring_version": "", "profile": "",  # older revisions
                                "review": None, "follows": None, "joined": []}


class TriageStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def apply(self, alerts: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]],
              shared: Sequence[dict[str, Any]] = (), moves: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
        with self._sessions.begin() as session:
            return apply_in(session, alerts, outcomes, shared, moves)


def apply_in(session: Session, alerts: Sequence[dict[str, Any]], outcomes: Sequence[dict[str, Any]],
             shared: Sequence[dict[str, Any]] = (), moves: Sequence[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """Write a batch's outcomes, timeline events and alert revisions in the caller's transaction:
    one statement per kind of row (executemany), never a round trip per row. A merge moves the
    retired person's timeline to the survivor. The alert revisions written, as the hub made them
    (before any rating a person set is kept over them): what the triage stage seals."""
    connection = session.connection()
    _insert_new(connection, EventOutcomeRecord, "event_id",
                [{**o, "recorded_at": _dt(o["recorded_at"])} for o in {o["event_id"]: o for o in reversed(outcomes)}
                 .values()])  # the first of a batch wins
    rows = [_timeline_row(e) for e in {e["event_id"]: e for e in shared}.values()]
    fresh = _insert_new(connection, TimelineEventRecord, "event_id", rows)
    if moves:
        timeline = cast(Table, TimelineEventRecord.__table__)
        connection.execute(update(timeline).where(timeline.c.person_id == bindparam("retired"))
                           .values(person_id=bindparam("survivor")),
                           [{"retired": r, "survivor": s} for r, s in moves])
    _supersede(connection, {r["record_id"] for r in rows if r["revision"] is not None}, fresh)
    return _upsert_alerts(connection, _latest_revisions(alerts))


def _timeline_row(e: dict[str, Any]) -> dict[str, Any]:
    revised = e.get("revised_at")
    return {"event_id": e["event_id"], "person_id": e["person_id"], "event_type": e["event_type"],
            "source_agency": e["source_agency"], "occurred_at": _dt(e["occurred_at"]),
            "received_at": _dt(e["received_at"]), "sensitivity": e["sensitivity"], "consent": e["consent"],
            "policy_version": e["policy_version"], "audit_ref": e["audit_ref"], "values": e["values"],
            "views": {v["role"]: list(v["fields"]) for v in e["views"]},
            "record_id": e.get("record_id") or e["event_id"], "revision": e.get("revision"),
            "revised_at": _dt(revised) if revised is not None else None, "withdrawn": bool(e.get("withdrawn"))}


def _supersede(connection: Connection, records: set[str], fresh: set[str]) -> None:
    """Each record's latest revision stands; the earlier ones are marked superseded by it and keep,
    for each role, only fields the latest still shares with that role: a consent withdrawn takes
    the fields out of every view held (the audit trail keeps what was shared, and when). `fresh`:
    the rows this batch wrote, which nobody has seen yet."""
    table = cast(Table, TimelineEventRecord.__table__)
    revisions: dict[str, list[Any]] = {}
    for row in _rows_in(connection, ("event_id", "record_id", "person_id", "revised_at", "received_at",
                                     "superseded_by", "withdrawn"), table.c.record_id, records):
        revisions.setdefault(row.record_id, []).append(row)
    # A record seen once and standing needs nothing: only the others' views and values are read.
    revisions = {record: rows for record, rows in revisions.items()
                 if len(rows) > 1 or any(r.withdrawn or r.superseded_by for r in rows)}
    if not revisions:
        return
    seen = {row.event_id: row for row in _rows_in(connection, ("event_id", "views", "values", "withdrawn_fields"),
                                                    table.c.event_id,
                                                    {r.event_id for rows in revisions.values() for r in rows})}
    revisions = {record: [_Revision(r, seen[r.event_id].views, seen[r.event_id].values,
                                    seen[r.event_id].withdrawn_fields) for r in rows]
                 for record, rows in revisions.items()}
    changes: list[dict[str, Any]] = []
    for rows in revisions.values():
        rows.sort(key=lambda r: (revision_ms(r.revised_at, r.received_at), r.event_id))
        latest = rows[-1]
        for k, row in enumerate(rows):
            if row is latest and not latest.withdrawn:
                continue
            # about another child now (a corrected identifier re-linked it), or retracted by its agency
            # (entered in error: perhaps about another child): nothing of it stays to be seen
            moved = row.person_id != latest.person_id
            still = {} if latest.withdrawn or moved else latest.views
            views = {role: [f for f in fields if f in still.get(role, ())] for role, fields in row.views.items()}
            values = orjson.dumps(_only(parse_values(row.values), {f for fs in views.values() for f in fs})).decode()
            by = None if row is latest else latest.event_id
            # "withdrawn on" only where a role saw the row (it stood, and not about another child)
            stood = row.event_id not in fresh and (row.superseded_by is None or row.withdrawn_fields is not None)
            gone = _withdrawn(row, views, rows[k + 1:]) if stood and not moved else None
            if row.superseded_by != by or views != row.views or values != row.values or gone != row.withdrawn_fields:
                changes.append({"p_event_id": row.event_id, "p_superseded_by": by, "p_views": views,
                                "p_values": values, "p_at": datetime.now(UTC) if by else None,
                                "p_gone": gone})
    if changes:
        connection.execute(update(table).where(table.c.event_id == bindparam("p_event_id")).values(
            superseded_by=bindparam("p_superseded_by"), views=bindparam("p_views"), values=bindparam("p_values"),
            superseded_at=bindparam("p_at"), withdrawn_fields=bindparam("p_gone")), changes)


def _withdrawn(row: _Revision, views: dict[str, list[str]], later: Sequence[_Revision]) -> dict[str, dict[str, str]]:
    """The fields each role saw of this revision and no longer does, with the date (in London, as
    the app shows every time) of the first later revision that stopped sharing them: the app shows
    "withdrawn on <date>" in their place. An empty map still says the row was seen."""
    gone = {role: dict(fields) for role, fields in (row.withdrawn_fields or {}).items()}
    for role, fields in row.views.items():
        for name in set(fields) - set(views.get(role, ())):
            if name not in gone.get(role, {}):
                gone.setdefault(role, {})[name] = _stopped_sharing(name, role, later)
    return gone


def _stopped_sharing(name: str, role: str, later: Sequence[_Revision]) -> str:
    for revision in later:  # shared by a revision: in its view now, or withdrawn from it since
        if name not in revision.views.get(role, ()) and name not in (revision.withdrawn_fields or {}).get(role, {}):
            when = revision_time(revision.revised_at, revision.received_at)
            return when.astimezone(LONDON).date().isoformat()
    return datetime.now(LONDON).date().isoformat()


class _Revision:
    """A timeline row of a record with more than one revision: its order and standing, views and values."""

    def __init__(self, row: Any, views: dict[str, list[str]], values: str,
                 withdrawn_fields: dict[str, dict[str, str]] | None) -> None:
        self.event_id, self.record_id, self.person_id = row.event_id, row.record_id, row.person_id
        self.revised_at, self.received_at = row.revised_at, row.received_at
        self.superseded_by, self.withdrawn = row.superseded_by, row.withdrawn
        self.views, self.values, self.withdrawn_fields = views, values, withdrawn_fields  # None: never seen


def _rows_in(connection: Connection, columns: Sequence[str], key: Any, wanted: set[str]) -> list[Any]:
    table = key.table
    ordered = sorted(wanted)
    return [row for start in range(0, len(ordered), CHUNK)
            for row in connection.execute(select(*(table.c[c] for c in columns))
                                          .where(key.in_(ordered[start:start + CHUNK])))]


def _only(values: dict[str, Any], fields: set[str], prefix: str = "") -> dict[str, Any]:
    """The nested values keeping only the dotted field names given."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if name in fields:
            kept[key] = value
        elif isinstance(value, dict):
            inner = _only(value, fields, f"{name}.")
            if inner:
                kept[key] = inner
    return kept


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _insert_new(connection: Connection, model: Any, key: str, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose key is not stored yet (a redelivery's are): INSERT .. ON CONFLICT DO
    NOTHING; the keys inserted."""
    if not rows:
        return set()
    table = model.__table__
    dialect = connection.dialect.name
    statement = (postgresql_insert(table) if dialect == "postgresql" else sqlite_insert(table)
                 ).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    return set(connection.execute(statement, rows).scalars())


def _upsert_alerts(connection: Connection, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = cast(Table, AlertRecord.__table__)
    stored: dict[str, Any] = {}
    ids = [a["alert_id"] for a in alerts]
    for start in range(0, len(ids), CHUNK):
        for row in connection.execute(select(table.c.alert_id, table.c.revision, table.c.rag, table.c.rag_rank,
                                             table.c.hub_rag, table.c.rag_set_by, table.c.due_at, table.c.at_risk_at)
                                      .where(table.c.alert_id.in_(ids[start:start + CHUNK]))):
            stored[row.alert_id] = row
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    written: list[dict[str, Any]] = []
    for alert in alerts:
        values = {**{k: alert.get(k, HUB_DEFAULTS.get(k)) for k in HUB_COLUMNS},
                  **{k: _dt(alert[k]) for k in HUB_TIMES if alert.get(k) is not None},
                  "rag_rank": RAG_RANK[alert["rag"]]}
        known = stored.get(alert["alert_id"])
        if known is None:
            fresh.append(values)
            written.append(values)
        elif alert["revision"] > known.revision:
            written.append(values)
            changed.append({**_revision_over(known, values), "seen": {
                "seen_revision": known.revision, "seen_set_by": known.rag_set_by, "seen_rag": known.rag}})
    if fresh:
        connection.execute(insert(table), fresh)
    for group in _same_columns(changed):
        columns = [k for k in group[0] if k not in ("alert_id", "seen")]
        # Only over the row as read: if the app re-rated it in between, redo the batch on what is there now.
        statement = (update(table).where(table.c.alert_id == bindparam("p_alert_id"),
                                         table.c.revision == bindparam("seen_revision"),
                                         table.c.rag_set_by.is_not_distinct_from(bindparam("seen_set_by")),
                                         table.c.rag.is_not_distinct_from(bindparam("seen_rag")))
                     .values({k: bindparam(f"p_{k}") for k in columns}))
        rows = [{**{f"p_{k}": v for k, v in row.items() if k != "seen"}, **row["seen"]} for row in group]
        if connection.execute(statement, rows).rowcount != len(rows):
            raise RowMoved("an alert changed in the triage app while the hub revised it")
    return written


class RowMoved(Contention):
    """A row changed between reading and writing it (the triage app acted): redo the batch."""


def _revision_over(row: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A new hub revision's columns over a stored alert; the app's columns are never touched."""
    if row.rag_set_by is not None:
        # A person set the rating: it stands unless the hub now rates the child more urgently than
        # both that person and the hub itself did at the time (new information, not a repeat).
        if RAG_RANK[values["rag"]] >= min(row.rag_rank, RAG_RANK[row.hub_rag or row.rag]):
            values = {**values, "rag": row.rag, "rag_rank": row.rag_rank, "due_at": row.due_at,
                      "at_risk_at": row.at_risk_at, "hub_rag": values["rag"]}
        else:
            values = {**values, "hub_rag": None, "rag_set_by": None, "rag_set_at": None}
    return values


def _same_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _latest_revisions(alerts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        seen = latest.get(alert["alert_id"])
        if seen is None or alert["revision"] > seen["revision"]:
            latest[alert["alert_id"]] = alert
    return list(latest.values())


def _dt(value: datetime | int) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromtimestamp(value / 1000, UTC)


def parse_values(text: str) -> dict[str, Any]:
    return dict(orjson.loads(text or "{}"))
