"""The sharing stage: enriched events in, per-role views and sealed decision records out.

For each event the policy decides, for every recipient role, what it may see. The decisions are
sealed into the input partition's hash chain and committed to SQL before anything is sent, so a
view never leaves without its record. A redelivered event finds its records by key and is sent
again exactly as first decided (the topic may then carry a record twice; verification knows an
exact repeat). Merge notices pass through untouched; anything else goes to the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec, CodecError
from mash.topics import AUDIT, SHARED
from services.messages import InMessage, OutMessage, dead_letter_for
from services.sharing import audit_store
from services.sharing.audit_chain import Sealed, seal
from services.sharing.decide import EventFacts, RoleDecision, decide_all
from services.sharing.decision_record import decision_key, decision_record
from services.sharing.fields import Scalar, flatten
from services.sharing.policy_source import PolicySource
from services.sharing.vocabulary import CONTEXT_FLAGS

STAGE = "hub:sharing"
ENRICHED_SCHEMA = "uk.mash.hub.EnrichedEvent"
MERGED_SCHEMA = "uk.mash.hub.PersonMerged"
SHARED_SCHEMA = "uk.mash.hub.SharedEvent"
AUDIT_SCHEMA = "uk.mash.hub.AuditRecord"
MAX_ATTEMPTS = 5


class NotForSharing(CodecError):
    """A well-formed message of a schema that does not belong on the enriched topic."""


@dataclass
class _Item:
    message: InMessage
    header: dict[str, Any] | None = None  # None: passed through or dead-lettered
    fields: dict[str, Scalar] | None = None
    decisions: list[RoleDecision] | None = None
    passthrough: OutMessage | None = None
    records: list[Sealed] | None = None


class Sharer:
    def __init__(self, codec: Codec, sessions: sessionmaker[Session], policies: PolicySource,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.codec = codec
        self.sessions = sessions
        self.policies = policies
        self.clock = clock

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        policy = self.policies.current()  # a clean point: the whole batch is decided by one policy
        items = [self._read(message) for message in batch]
        for item in items:
            if item.header is not None and item.fields is not None:
                facts = EventFacts(item.header["event_type"], item.header["source_agency"],
                                   item.header["sensitivity"], item.header["consent"],
                                   {flag: bool(item.fields.get(f"context.{flag}")) for flag in CONTEXT_FLAGS})
                item.decisions = decide_all(policy, facts, item.fields)
        self._record([i for i in items if i.decisions is not None], policy.version)
        return [out for item in items for out in self._outputs(item)]

    def _read(self, message: InMessage) -> _Item:
        try:
            writer = self.codec.writer_of(message.value)
            if writer.name == MERGED_SCHEMA:
                return _Item(message, passthrough=OutMessage(SHARED, message.key, message.value))
            if writer.name != ENRICHED_SCHEMA:
                raise NotForSharing(f"{writer.name} does not belong on the enriched topic")
            event, _ = self.codec.decode(message.value, reader_name=ENRICHED_SCHEMA)
            envelope = event["envelope"]
            header = {"event_id": envelope["event_id"], "person_id": event["person_id"],
                      "event_type": envelope["event_type"], "source_agency": envelope["source_agency"],
                      "occurred_at": envelope["occurred_at"], "received_at": envelope["received_at"],
                      "sensitivity": envelope["sensitivity"], "consent": envelope["consent"]}
            return _Item(message, header, flatten(event))
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the stream
            return _Item(message, passthrough=dead_letter_for(message, exc, STAGE, self.codec))

    # -- the audit trail: sealed and committed before anything is sent ---------------------------------

    def _record(self, items: list[_Item], policy_version: str) -> None:
        if not items:
            return
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    self._seal(session, items, policy_version)
                return
            except IntegrityError:  # another worker appended to the chain (a rebalance): read its head again
                if attempt == MAX_ATTEMPTS:
                    raise

    def _seal(self, session: Session, items: list[_Item], policy_version: str) -> None:
        """Records for every (event, role): found if already made (a redelivery), else sealed now."""
        keys = {id(i): [decision_key(i.header["event_id"], d.role) for d in i.decisions or ()]  # type: ignore[index]
                for i in items}
        records = audit_store.recorded(session, [k for ks in keys.values() for k in ks])
        now = self.clock()
        fresh: dict[str, list[tuple[dict[str, Any], audit_store.Entry]]] = {}
        for item in items:
            header = item.header or {}
            for decision, key in zip(item.decisions or (), keys[id(item)], strict=True):
                if key in records:
                    continue
                chain = f"p{item.message.partition}"
                record = decision_record(decision, header, policy_version, now)
                fresh.setdefault(chain, []).append((record, audit_store.Entry(
                    Sealed(chain, 0, "", "", ""), header["event_id"], decision.role, key)))
                records[key] = Sealed(chain, 0, "", "", "")  # placeholder: a repeat in the batch is decided once
        entries = []
        for chain, pending in fresh.items():
            sealed = seal(chain, audit_store.head(session, chain), [record for record, _ in pending])
            for (_, entry), made in zip(pending, sealed, strict=True):
                entries.append(audit_store.Entry(made, entry.event_id, entry.role, entry.key))
                records[entry.key] = made
        audit_store.append(session, entries)
        for item in items:
            item.records = [records[k] for k in keys[id(item)]]

    # -- what is sent ----------------------------------------------------------------------------------

    def _outputs(self, item: _Item) -> list[OutMessage]:
        if item.passthrough is not None:
            return [item.passthrough]
        if item.records is None or item.header is None or item.fields is None:
            raise AssertionError("an enriched event left unrecorded")
        views = []
        for sealed in item.records:
            record = sealed.record
            shared = record["fields_shared"]
            views.append({"role": record["recipient_role"], "outcome": record["outcome"],
                          "fields": {name: item.fields[name] for name in shared if name in item.fields},
                          "withheld": record["fields_withheld"], "audit_ref": f"{sealed.chain}:{sealed.seq}"})
        header = item.header
        shared_event = {**header, "policy_version": item.records[0].record["policy_version"], "views": views}
        out = [OutMessage(SHARED, header["person_id"].encode(),
                          self.codec.encode(shared_event, SHARED_SCHEMA, check_types=False))]
        out.extend(OutMessage(AUDIT, sealed.chain.encode(), self.codec.encode(
            {"chain": sealed.chain, "seq": sealed.seq, "prev_hash": sealed.prev_hash, "hash": sealed.hash,
             "body": sealed.body}, AUDIT_SCHEMA, check_types=False)) for sealed in item.records)
        return out
