"""The sharing stage: enriched events in, per-role views and sealed decision entries out.

For each event the policy decides, for every recipient role, what it may see. The decisions are
sealed as one entry into the input partition's hash chain and committed to SQL before anything
is sent, so a view never leaves without its record. A redelivered event finds its entry and is
sent again exactly as first decided (the topic may then carry an entry twice; verification knows
an exact repeat). Merge notices pass through untouched; anything else goes to the dead-letter topic.

Every entry is signed with the stage's audit key (audit_signing). An entry found for an event that
no key holder signed was put there by someone who may append to the trail but is not the hub:
nothing it says is released; the event is decided afresh, its entry under a key of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.codec import Codec, CodecError
from mash.settings import get_settings
from mash.topics import AUDIT, SHARED
from services.messages import Contention, InMessage, OutMessage, dead_letter_for
from services.sharing import audit_store
from services.sharing.audit_chain import Sealed, digest, seal
from services.sharing.audit_keys import audit_keys
from services.sharing.audit_signing import AuditKeys
from services.sharing.audit_topic import encoded
from services.sharing.decide import EventFacts, decide_all, decision_inputs
from services.sharing.decision_record import (
    DecisionSet,
    decision_entry,
    decision_key,
    decision_set,
    with_its_place,
)
from services.sharing.fields import EventFields, Plan, plan_of
from services.sharing.policy_source import PolicySource
from services.sharing.sealed_values import sealed_values
from services.sharing.vocabulary import CONTEXT_FLAGS

STAGE = "hub:sharing"
log = logging.getLogger(__name__)
ENRICHED_SCHEMA = "uk.mash.hub.EnrichedEvent"
MERGED_SCHEMA = "uk.mash.hub.PersonMerged"
SHARED_SCHEMA = "uk.mash.hub.SharedEvent"
MAX_ATTEMPTS = 5
CACHE_LIMIT = 10_000  # kinds of event remembered with their decisions


class NotForSharing(CodecError):
    """A well-formed message of a schema that does not belong on the enriched topic."""


@dataclass
class _Item:
    message: InMessage
    header: dict[str, Any] | None = None  # None: passed through or dead-lettered
    fields: EventFields | None = None
    decisions: DecisionSet | None = None
    passthrough: OutMessage | None = None
    entry: Sealed | None = None
    body: dict[str, Any] | None = None  # the entry's content, parsed or as just made
    records: list[dict[str, Any]] | None = None  # the decision set's per-role records
    values: str | None = None  # the values released (JSON), made when its entry is sealed


class Sharer:
    def __init__(self, codec: Codec, sessions: sessionmaker[Session], policies: PolicySource,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), keys: AuditKeys | None = None) -> None:
        self.codec = codec
        self.sessions = sessions
        self.policies = policies
        self.clock = clock
        # entries found are trusted only under the hub's own keys, never another writer's
        self.keys = (keys if keys is not None else audit_keys(get_settings())).for_writer("hub")
        self._decided: dict[tuple[object, ...], DecisionSet] = {}
        self._stored_sets: set[str] = set()  # digests this worker knows the store holds
        self._views: dict[str, tuple[Plan, bytes, bytes]] = {}  # decision set -> fields, views, outcomes

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        policy = self.policies.current()  # a clean point: the whole batch is decided by one policy
        items = [self._read(message) for message in batch]
        if len(self._decided) > CACHE_LIMIT:
            self._decided.clear()
        for item in items:
            if item.header is not None and item.fields is not None:
                facts = EventFacts(item.header["event_type"], item.header["source_agency"],
                                   item.header["sensitivity"], item.header["consent"],
                                   {flag: bool(item.fields.get(f"context.{flag}")) for flag in CONTEXT_FLAGS})
                inputs = decision_inputs(policy, facts, item.fields)
                if inputs not in self._decided:  # most events are decided alike: decide each kind once
                    self._decided[inputs] = decision_set(decide_all(policy, facts, item.fields))
                item.decisions = self._decided[inputs]
        self._record([i for i in items if i.decisions is not None], policy.version)
        sets_sent: set[tuple[str, str]] = set()  # (chain, digest): a set goes on the topic once a batch
        return [out for item in items for out in self._outputs(item, sets_sent)]

    def _read(self, message: InMessage) -> _Item:
        try:
            writer = self.codec.writer_of(message.value)
            if writer.name == MERGED_SCHEMA:  # read whole here: a corrupt one is this stage's dead letter
                self.codec.decode(message.value, reader_name=MERGED_SCHEMA)
                return _Item(message, passthrough=OutMessage(SHARED, message.key, message.value))
            if writer.name != ENRICHED_SCHEMA:
                raise NotForSharing(f"{writer.name} does not belong on the enriched topic")
            event, _ = self.codec.decode(message.value, reader_name=ENRICHED_SCHEMA)
            envelope = event["envelope"]
            header = {"event_id": envelope["event_id"], "person_id": event["person_id"],
                      "event_type": envelope["event_type"], "source_agency": envelope["source_agency"],
                      "occurred_at": envelope["occurred_at"], "received_at": envelope["received_at"],
                      "sensitivity": envelope["sensitivity"], "consent": envelope["consent"],
                      # a revision is decided afresh: its own event id, its own consent, its record named
                      "record_id": envelope.get("record_id") or envelope["event_id"],
                      "revision": envelope.get("revision"), "revised_at": envelope.get("revised_at"),
                      "withdrawn": bool(envelope.get("withdrawn"))}
            return _Item(message, header, EventFields(event))
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the stream
            return _Item(message, passthrough=dead_letter_for(message, exc, STAGE, self.codec))

    # -- the audit trail: sealed and committed before anything is sent ---------------------------------

    def _record(self, items: list[_Item], policy_version: str) -> None:
        if not items:
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    sets = self._seal(session, items, policy_version)
                self._stored_sets.update(sets)  # committed: later batches need not send them again
                return
            except IntegrityError as exc:  # another worker appended to the chain (a rebalance): read its head again
                if attempt == MAX_ATTEMPTS:
                    raise Contention("the audit chain's head kept moving under this batch") from exc

    def _seal(self, session: Session, items: list[_Item], policy_version: str) -> dict[str, str]:
        """An entry for every event: found if already made (a redelivery), else sealed now."""
        for item in items:  # a retry starts clean: nothing from a rolled-back attempt survives
            item.entry = item.body = item.records = item.values = None
        bases = [decision_key(item.header["event_id"]) for item in items]  # type: ignore[index]
        found, taken = self._trusted(audit_store.recorded(session, [item.header["event_id"] for item in items]))  # type: ignore[index]
        now = self.clock()
        entries_of = self._entries_of_records(session, [i for i, b in zip(items, bases, strict=True) if b not in found])
        fresh: dict[str, list[tuple[_Item, str, dict[str, Any]]]] = {}
        first: dict[str, _Item] = {}
        sets: dict[str, str] = {}
        for item, base in zip(items, bases, strict=True):
            if base in found:
                item.entry = found[base]
                item.body = item.entry.record
                item.records = orjson.loads(item.entry.decisions or "[]")
            elif base not in first:  # a repeat within the batch is decided once
                first[base] = item
                decisions = item.decisions
                assert decisions is not None
                if decisions.digest not in self._stored_sets:
                    sets[decisions.digest] = decisions.text
                entry = self._placed({**decision_entry(decisions, item.header or {}, policy_version, now),
                                      "values_mac": self._released(item)}, entries_of)
                item.records = decisions.records
                fresh.setdefault(f"p{item.message.partition}", []).append((item, _free_key(base, taken), entry))
        made = self._sealed_fresh(session, fresh)
        audit_store.append(session, made, sets)
        for planted in audit_store.sets_differing(session, sets):  # a set of that name was there before ours
            metrics.AUDIT_UNTRUSTED.inc()
            log.error("the decision set %s was already stored with other content (planted by someone who may "
                      "append to the trail): it is never read back as ours; see the runbook (MashAuditUntrusted)",
                      planted[:12])
        for item, base in zip(items, bases, strict=True):
            if item.entry is None:  # a repeat within the batch: its first copy's entry
                item.entry, item.body, item.records = first[base].entry, first[base].body, first[base].records
                item.values = first[base].values
        return sets

    def _trusted(self, recorded: dict[str, Sealed]) -> tuple[dict[str, Sealed], set[str]]:
        """The entries found that a key holder signed, by the event's decision key; and every key taken.
        An entry no key holder signed was appended by someone who may write to the trail but is not a
        writer: it is never taken as the decision (the event is decided afresh under a key of its own),
        and it is logged and counted (`mash audit verify` names it)."""
        trusted: dict[str, Sealed] = {}
        for key, entry in sorted(recorded.items()):
            problem = self.keys.problem(entry.chain, entry.seq, entry.hash, entry.signature, entry.legacy) or \
                _set_problem(entry)
            if problem is None:
                trusted.setdefault(key.split("#", 1)[0], entry)
            else:
                metrics.AUDIT_UNTRUSTED.inc()
                log.error("audit entry %s:%s (key %s) is untrusted: %s; the event is decided afresh. Run `mash "
                          "audit verify`; see the runbook (MashAuditUntrusted)", entry.chain, entry.seq, key, problem)
        return trusted, set(recorded)

    def _sealed_fresh(self, session: Session, fresh: dict[str, list[tuple[_Item, str, dict[str, Any]]]]
                      ) -> list[audit_store.Entry]:
        """New entries sealed onto their chains' heads and signed with the stage's key."""
        made = []
        for chain, pending in fresh.items():
            sealed = seal(chain, audit_store.head(session, chain), [entry for _, _, entry in pending])
            for (item, key, entry), record in zip(pending, sealed, strict=True):
                record = Sealed(record.chain, record.seq, record.prev_hash, record.hash, record.body,
                                item.decisions.text if item.decisions else None,
                                self.keys.sign(record.chain, record.seq, record.hash))
                item.entry, item.body = record, entry
                made.append(audit_store.Entry(record, entry["event_id"], key, entry["decisions_digest"],
                                              entry.get("record_id")))
        return made

    def _released(self, item: _Item) -> str:
        """The values the event releases, kept for its message, and their keyed digests for its entry:
        what the timeline later holds of it is checked against them (`sealed_values`)."""
        assert item.decisions is not None and item.fields is not None and item.header is not None
        names = {name for d in item.decisions.records for name in d["fields_shared"]}
        nested = item.fields.nested(self._plan(item.decisions.text, names))
        item.values = orjson.dumps(nested).decode()
        return sealed_values(self.keys.macs, item.header["event_id"], nested, names, item.header["occurred_at"])

    def _plan(self, decisions: str, names: set[str]) -> Plan:
        cached = self._views.get(decisions)
        return cached[0] if cached is not None else plan_of(names)

    @staticmethod
    def _entries_of_records(session: Session, items: list[_Item]) -> dict[str, list[dict[str, Any]]]:
        """The entries already recorded for the records these revisions are of."""
        records = [item.header["record_id"] for item in items if item.header and item.header.get("revision")]
        return audit_store.of_records(session, records) if records else {}

    @staticmethod
    def _placed(entry: dict[str, Any], entries_of: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        """A revision's entry names the one it supersedes, recorded before or earlier in the batch."""
        if "record_id" not in entry:
            return entry
        earlier = entries_of.setdefault(entry["record_id"], [])
        earlier.append(with_its_place(entry, earlier))
        return earlier[-1]

    # -- what is sent ----------------------------------------------------------------------------------

    def _outputs(self, item: _Item, sets_sent: set[tuple[str, str]]) -> list[OutMessage]:
        if item.passthrough is not None:
            return [item.passthrough]
        if item.entry is None or item.body is None or item.header is None or item.fields is None:
            raise AssertionError("an enriched event left unrecorded")
        fields, entry = item.fields, item.entry
        decisions = item.records or []
        views = self._views.get(entry.decisions or "")
        if views is None:  # planned and encoded once per decision set: events decided alike share them
            if len(self._views) > CACHE_LIMIT:
                self._views.clear()
            views = self._views[entry.decisions or ""] = (
                plan_of({name for d in decisions for name in d["fields_shared"]}),
                self.codec.encode_last_field([{"role": d["recipient_role"], "outcome": d["outcome"],
                                               "fields": d["fields_shared"]} for d in decisions], SHARED_SCHEMA),
                ";".join(f"{d['recipient_role']}={d['outcome']}" for d in decisions).encode())
        plan, encoded_views, outcomes = views
        head = {**item.header, "policy_version": item.body["policy_version"], "audit_ref": f"{entry.chain}:{entry.seq}",
                "values": item.values if item.values is not None else orjson.dumps(fields.nested(plan)).decode()}
        # The decision set rides with the first entry of the batch that names it on its chain: a
        # redelivered batch repeats it, so the topic can always be verified on its own.
        named = (entry.chain, item.body["decisions_digest"])
        audit = encoded(self.codec, entry, None if named in sets_sent else entry.decisions)
        sets_sent.add(named)
        return [OutMessage(SHARED, item.header["person_id"].encode(),
                           self.codec.encode_with_last_field(head, SHARED_SCHEMA, encoded_views),
                           [("mash.sharing", outcomes)]),
                OutMessage(AUDIT, entry.chain.encode(), audit)]


def _set_problem(entry: Sealed) -> str | None:
    """A found entry's decision set must be the one its sealed body names (a set planted under the
    name before the hub stored its own is not)."""
    named = entry.record.get("decisions_digest")
    if entry.decisions is None or digest(entry.decisions) != named:
        return f"the decision set stored under {str(named)[:12]} is not the one it names"
    return None


def _free_key(base: str, taken: set[str]) -> str:
    """The event's decision key, or, when an untrusted entry holds it, the next one free after it."""
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}#{n}"
    return key
