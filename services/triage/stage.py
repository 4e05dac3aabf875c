"""The triage stage: shared events, decisions and merges in; alerts, outcomes and the triage store out.

A batch is decided against each person's state read once from SQL (`state_store`), in input
order; the new states, the outcomes, the timeline and the alert revisions are written in one
transaction, and only then are the alert and outcome messages sent (and, after the broker has
them, the input committed). A redelivered event finds itself in its person's state and repeats
its outcome and the current alert, changing nothing. An event triage cannot handle is dead-lettered
with its reason; the rest of its batch goes on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import LinkDecisionRecord
from mash.revisions import revision_ms
from mash.topics import ALERTS, AUDIT, DECISIONS, OUTCOMES, SHARED
from services.messages import InMessage, OutMessage, dead_letter_for
from services.sharing.audit_signing import AuditKeys
from services.sharing.audit_topic import encoded
from services.triage import state_store
from services.triage.correlation import (
    AlertState,
    Decision,
    EventFacts,
    PersonState,
    Rules,
    SeenEvent,
    absorb,
    close,
    correlate,
    leave,
    retire,
)
from services.triage.scoring import indicators_of
from services.triage.state_store import Held, StaleState
from services.triage_store import sealed_alerts
from services.triage_store.store import RowMoved, apply_in

STAGE = "hub:triage"
ALERT_SCHEMA = "uk.mash.hub.Alert"
OUTCOME_SCHEMA = "uk.mash.hub.EventOutcome"
SHARED_SCHEMA = "uk.mash.hub.SharedEvent"
MERGED_SCHEMA = "uk.mash.hub.PersonMerged"
DECISION_SCHEMA = "uk.mash.hub.TriageDecision"
MAX_ATTEMPTS = 5  # a batch redone after another worker wrote one of its persons (a rebalance)
log = logging.getLogger("mash.hub")


class NotForTriage(ValueError):
    """A well-formed message of a schema that does not belong on the shared topic."""


# What each of triage's input topics may carry. A decision closes alerts and comes from the triage
# app; a shared event is scored and comes from the sharing stage (sealed in the audit first): one
# taken from the other's topic would let a writer of decisions inject events no policy decided, or
# a writer of shared events close alerts.
# An enquiry's threshold decision travels on the decisions topic too, for everyone downstream; triage
# takes note of it and does nothing (the alert's own decision closes the alert).
ENQUIRY_DECISION_SCHEMA = "uk.mash.hub.EnquiryDecision"
TOPIC_SCHEMAS = {SHARED: frozenset({SHARED_SCHEMA, MERGED_SCHEMA}),
                 DECISIONS: frozenset({DECISION_SCHEMA, ENQUIRY_DECISION_SCHEMA})}


def off_topic(topic: str, schema_name: str) -> str | None:
    """Why `schema_name` does not belong on `topic` (as consumed, after any prefix), or None."""
    for name, schemas in TOPIC_SCHEMAS.items():
        if topic.endswith(name):
            return None if schema_name in schemas else f"{schema_name} does not belong on {name}"
    return f"{topic} is not a triage input topic"


@dataclass
class _Item:
    message: InMessage
    record: dict[str, Any]
    schema: str


@dataclass
class _Written:
    """What a batch puts in the triage store, beside the messages it sends."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    shared: list[dict[str, Any]] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)  # (retired, survivor) of merges

    def mark(self) -> tuple[int, int, int, int]:
        return len(self.alerts), len(self.outcomes), len(self.shared), len(self.moves)

    def rewind(self, mark: tuple[int, int, int, int]) -> None:
        del self.alerts[mark[0]:], self.outcomes[mark[1]:], self.shared[mark[2]:], self.moves[mark[3]:]


class Triage:
    def __init__(self, codec: Codec, rules: Rules, sessions: sessionmaker[Session] | None = None,
                 clock: Callable[[], int] = lambda: int(time.time() * 1000), keys: AuditKeys | None = None) -> None:
        """`keys`: the hub's audit key, to seal every alert revision it writes (none: not sealed, for
        tests of the decisions alone)."""
        self._linked: dict[str, tuple[str, ...]] = {}  # this batch's records: whom their revisions link to
        self.keys = keys
        self._sealed: list[OutMessage] = []  # this batch's alert seals, for the audit topic
        self.codec = codec
        self.rules = rules
        self.sessions = sessions
        self.clock = clock

    def process_batch(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        """The stage: decide the batch, store it, and return what to send (in input order)."""
        assert self.sessions is not None, "the stage needs the database"
        read = [self._read(message) for message in batch]
        items = [r for r in read if isinstance(r, _Item)]
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    sent = self._decide(session, items)
                break
            except (StaleState, RowMoved, IntegrityError) as exc:  # another writer held these rows: read again
                if attempt == MAX_ATTEMPTS:
                    raise
                log.info("triage state moved under this batch (%s); redoing it", type(exc).__name__,
                         extra={"stage": "triage"})
                continue
            except DBAPIError as exc:
                if not _conflict(exc) or attempt == MAX_ATTEMPTS:
                    raise
                log.info("the database gave up this batch for another writer's; redoing it", extra={"stage": "triage"})
        stored = [("mash.stored_ms", str(self.clock()).encode())]  # committed: in the triage store from now
        out: list[OutMessage] = list(self._sealed)  # the seals first: an alert is never out before its seal
        for r in read:
            out.extend([r] if isinstance(r, OutMessage) else
                       [replace(m, headers=[*m.headers, *stored]) if m.topic == OUTCOMES else m for m in sent[id(r)]])
        return out

    def _read(self, message: InMessage) -> _Item | OutMessage:
        try:
            name = self.codec.writer_of(message.value).name
            wrong_topic = off_topic(message.topic, name)
            if wrong_topic:
                raise NotForTriage(wrong_topic)
            record, writer = self.codec.decode(message.value, reader_name=name)  # the latest version of it
            self.persons_of(record, writer.name)  # refuses a schema that does not belong here
            return _Item(message, record, writer.name)
        except Exception as exc:  # noqa: BLE001 - dead-letter and go on
            return self.dead_letter(message, exc)

    def _decide(self, session: Session, items: list[_Item]) -> dict[int, list[OutMessage]]:
        self._linked = _persons_of_records(session, {str(i.record["record_id"]) for i in items
                                                     if i.schema == SHARED_SCHEMA and i.record.get("record_id")})
        held = state_store.load(session, {p for item in items for p in self.persons_of(item.record, item.schema)}
                                | {p for persons in self._linked.values() for p in persons})
        written = _Written()
        now_ms = self.clock()
        sent: dict[int, list[OutMessage]] = {}
        for item in items:
            named = (*self.persons_of(item.record, item.schema),
                     *self._linked.get(str(item.record.get("record_id") or ""), ()))
            involved = {person for one in named for person in (one, state_store.current(held, one))}
            before = written.mark(), {p: (held[p].state, held[p].changed) for p in involved}
            try:
                sent[id(item)] = self._handle(held, item, written, now_ms)
            except Exception as exc:  # noqa: BLE001 - one event triage cannot handle must not stop its batch
                written.rewind(before[0])  # nothing of it is stored: its dead letter is its outcome
                for person_id, (state, changed) in before[1].items():
                    held[person_id].state, held[person_id].changed = state, changed
                sent[id(item)] = [self.dead_letter(item.message, exc)]
        state_store.save(session, held)
        stored = apply_in(session, written.alerts, written.outcomes, written.shared, written.moves)
        self._sealed = self._seal(session, items, stored, written)
        return sent

    def _seal(self, session: Session, items: list[_Item], stored: list[dict[str, Any]],
              written: _Written) -> list[OutMessage]:
        """Each alert revision written and each merge applied, sealed on the batch's chain; and, for the
        revisions this batch sends again without writing (a redelivery), their seals again: the topic
        has every one."""
        if self.keys is None or not items:
            return []
        first = items[0].message
        chain = sealed_alerts.chain_for(first.topic, first.partition)
        made = sealed_alerts.append_signed(session, self.keys, chain, [
            *sealed_alerts.revisions(self.keys, stored), *sealed_alerts.merges(session, self.keys, written.moves)])
        new = {(a["alert_id"], a["revision"]) for a in stored}
        again = sealed_alerts.sealed_already(session, [(a["alert_id"], a["revision"]) for a in written.alerts
                                                       if (a["alert_id"], a["revision"]) not in new])
        return [OutMessage(AUDIT, entry.chain.encode(), encoded(self.codec, entry)) for entry in [*again, *made]]

    @staticmethod
    def persons_of(record: dict[str, Any], schema_name: str) -> tuple[str, ...]:
        """Whose state a message needs: the event's person, or both persons of a merge."""
        if schema_name in (SHARED_SCHEMA, DECISION_SCHEMA):
            return (str(record["person_id"]),)
        if schema_name == ENQUIRY_DECISION_SCHEMA:
            return ()
        if schema_name == MERGED_SCHEMA:
            return str(record["retired_person_id"]), str(record["surviving_person_id"])
        raise NotForTriage(f"{schema_name} does not belong on the shared topic")

    def _handle(self, held: dict[str, Held], item: _Item, written: _Written, now_ms: int) -> list[OutMessage]:
        """One message against the states in hand; a state changes only once its decision is whole."""
        record = item.record
        if item.schema == ENQUIRY_DECISION_SCHEMA:
            return []
        if item.schema == MERGED_SCHEMA:
            return self._merge(held, record, written, now_ms)
        person_id = state_store.current(held, str(record["person_id"]))
        mine = held[person_id]
        if item.schema == DECISION_SCHEMA:
            new_state, changed = close(mine.state, record["alert_id"], now_ms, self.rules,
                                       record.get("alert_revision"), person_id)
            _keep(mine, new_state)
            return [self._alert(person_id, alert, written) for alert in changed]
        shared = {**record, "person_id": person_id}  # an event in flight when its person was merged: the survivor's
        elsewhere = self._elsewhere(held, str(record.get("record_id") or ""), person_id)
        new_state, out, facts = self._process(mine.state, shared, now_ms, written, elsewhere)
        _keep(mine, new_state)
        return out + self._moved_away(held, facts, shared["person_id"], now_ms, written)

    @staticmethod
    def _applied(state: PersonState, event_id: str) -> bool:
        return any(e.event_id == event_id and e.superseded_by is None for e in state.events)

    def _others(self, held: dict[str, Held], record: str, person_id: str) -> set[str]:
        """The children, other than this one, that the record's earlier revisions were linked to."""
        return {state_store.current(held, p) for p in self._linked.get(record, ())} - {person_id}

    def _elsewhere(self, held: dict[str, Held], record: str, person_id: str) -> SeenEvent | None:
        """The record's newest live revision held by another child (a revision re-linked it there)."""
        found = [e for other in self._others(held, record, person_id) for e in held[other].state.events
                 if e.record == record and e.superseded_by is None]
        return max(found, key=lambda e: (e.revised_ms, e.event_id), default=None)

    def _moved_away(self, held: dict[str, Held], facts: EventFacts, person_id: str, now_ms: int,
                    written: _Written) -> list[OutMessage]:
        """A revision linked to another child than the record's earlier revisions: it leaves them."""
        if not facts.record_id or not self._applied(held[person_id].state, facts.event_id):
            return []
        out = []
        for other in self._others(held, facts.record_id, person_id):
            new_state, alert = leave(held[other].state, facts.record_id, facts, self.rules, now_ms)
            _keep(held[other], new_state)
            if alert is not None:
                out.append(self._alert(other, alert, written))
        return out

    def _merge(self, held: dict[str, Held], merged: dict[str, Any], written: _Written,
               now_ms: int) -> list[OutMessage]:
        """The retired person's state goes to the survivor; their alerts become one."""
        retired_id = str(merged["retired_person_id"])
        survivor_id = state_store.current(held, str(merged["surviving_person_id"]))
        if survivor_id == retired_id:
            return []
        retired = held[retired_id]
        handed_over = (PersonState.from_json(json.loads(merged["retired_state"])) if merged["retired_state"]
                       else retired.state)  # a hand-over written by an earlier version of the hub carries it
        survivor = held[survivor_id]
        new_state, alerts = absorb(survivor.state, survivor_id, retired_id, handed_over, self.rules, now_ms)
        _keep(survivor, new_state)
        _keep(retired, retire(retired.state, survivor_id))
        written.moves.append((retired_id, survivor_id))  # the timeline follows the merge
        return [self._alert(survivor_id, alert, written) for alert in alerts]

    def process(self, state: PersonState, shared: dict[str, Any], now_ms: int,
                written: _Written | None = None) -> tuple[PersonState, list[OutMessage]]:
        """Score on the values the sharing policy let out, once: the state keeps only the indicators found."""
        new_state, out, _ = self._process(state, shared, now_ms, written if written is not None else _Written())
        return new_state, out

    def _process(self, state: PersonState, shared: dict[str, Any], now_ms: int, written: _Written,
                 elsewhere: SeenEvent | None = None) -> tuple[PersonState, list[OutMessage], EventFacts]:
        person_id = shared["person_id"]
        occurred_ms = _ms(shared["occurred_at"])
        indicators = indicators_of(self.rules.scoring, shared["event_type"], orjson.loads(shared["values"] or "{}"),
                                   occurred_ms)
        facts = EventFacts(shared["event_id"], shared["source_agency"], occurred_ms,
                           () if shared.get("withdrawn") else indicators, shared.get("record_id") or "",
                           revision_ms(shared.get("revised_at"), shared["received_at"]),
                           bool(shared.get("withdrawn")))
        new_state, decision = correlate(state, person_id, facts, self.rules, now_ms, elsewhere)
        written.shared.append(shared)
        out = [self._outcome(facts, person_id, decision, now_ms, _ms(shared["received_at"]), written)]
        # A duplicate re-sends the current alert too: if the first attempt died between saving
        # state and sending, this is what delivers it (the store keeps the highest revision).
        if decision.alert is not None and (decision.alert_changed or decision.duplicate):
            out.append(self._alert(person_id, decision.alert, written))
        return new_state, out, facts

    def dead_letter(self, message: InMessage, error: Exception) -> OutMessage:
        return dead_letter_for(message, error, STAGE, self.codec)

    def _outcome(self, facts: EventFacts, person_id: str, decision: Decision, now_ms: int,
                 received_ms: int, written: _Written) -> OutMessage:
        record = {
            "event_id": facts.event_id,
            "person_id": person_id,
            "source_agency": facts.agency,
            "outcome": decision.outcome,
            "kind": decision.kind,
            "record_id": facts.record,
            "alert_id": decision.event_alert_id,
            "recorded_at": now_ms,
        }
        written.outcomes.append(record)
        value = self.codec.encode(record, OUTCOME_SCHEMA, check_types=False)  # built here, typed
        return OutMessage(OUTCOMES, facts.event_id.encode(), value, [  # facts for operators' metrics
            ("mash.outcome", decision.outcome.encode()), ("mash.agency", facts.agency.encode()),
            ("mash.received_ms", str(received_ms).encode()), ("mash.occurred_ms", str(facts.occurred_ms).encode()),
            ("mash.duplicate", b"true" if decision.duplicate else b"false"), ("mash.kind", decision.kind.encode())])

    def _alert(self, person_id: str, alert: AlertState, written: _Written) -> OutMessage:
        record = {
            "alert_id": alert.alert_id,
            "person_id": person_id,
            "revision": alert.revision,
            "status": alert.status,
            "rag": alert.rag,
            "reasons": list(alert.reasons),
            "agencies": list(alert.agencies),
            "event_ids": list(alert.event_ids),
            "opened_at": alert.opened_ms,
            "updated_at": alert.updated_ms,
            "score": alert.score,
            "indicators": list(alert.indicators),
            "scoring_version": alert.scoring_version,
            "profile": alert.profile,
            "clock_started_at": alert.clock_started_ms or None,
            "at_risk_at": alert.at_risk_ms or None,
            "due_at": alert.due_ms or None,
            "review": alert.review,
            "joined": list(alert.joined),
            "follows": alert.follows,
        }
        written.alerts.append(record)
        value = self.codec.encode(record, ALERT_SCHEMA, check_types=False)  # built here, typed
        change = "closed" if alert.status == "CLOSED" else "opened" if alert.revision == 1 else "updated"
        return OutMessage(ALERTS, person_id.encode(), value, [("mash.rag", alert.rag.encode()),
                                                               ("mash.change", change.encode())])


def _persons_of_records(session: Session, records: set[str]) -> dict[str, tuple[str, ...]]:
    """Whom each record's revisions were linked to (enrichment's link decisions)."""
    linked: dict[str, set[str]] = {}
    ordered = sorted(records)
    chunk = state_store.CHUNK
    for start in range(0, len(ordered), chunk):
        for record, person in session.execute(select(LinkDecisionRecord.record_id, LinkDecisionRecord.person_id)
                                              .where(LinkDecisionRecord.record_id.in_(ordered[start:start + chunk]))):
            linked.setdefault(str(record), set()).add(str(person))
    return {record: tuple(sorted(persons)) for record, persons in linked.items()}


def _conflict(error: DBAPIError) -> bool:
    """PostgreSQL gave up one of two transactions writing the same rows (deadlock, serialisation)."""
    return getattr(error.orig, "sqlstate", None) in ("40P01", "40001")


def _keep(held: Held, new_state: PersonState) -> None:
    if new_state is not held.state:  # decisions that change nothing hand the same state back
        held.state, held.changed = new_state, True


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)
