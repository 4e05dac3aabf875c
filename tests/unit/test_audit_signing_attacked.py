"""Adversarial review of signed audit entries (issue 16, "The audit trail cannot be rewritten by the
processes that write it"): audit_signing, audit_keys, audit_store's `legacy`, audit_topic, the sharing
stage's `_trusted`/`_free_key`, the app's sealed decisions and its outbox.

A test marked xfail(strict) names a DEFECT (its docstring says where, what happens and what is
expected); a passing test is an attack that HELD, kept as a regression test. Everything runs in
process on SQLite (tmp_path), with the Kafka consumer faked for the topic reader: no broker, no
PostgreSQL (tests/integration/test_audit_signing_attacked.py tries the runtime role's grants)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import AuditDecisionSetRow, AuditRecordRow, Base, TriageDecisionRecord
from mash.settings import PROJECT_ROOT, Settings
from services.sharing import audit_store, audit_topic
from services.sharing.audit_chain import GENESIS, Head, Sealed, anchored, canonical, digest, seal, verify
from services.sharing.audit_signing import AuditKeys, key_id

CODEC = Codec()
HUB_KEY = secrets.token_urlsafe(48).encode()
APP_KEY = secrets.token_urlsafe(48).encode()
POLICY = PROJECT_ROOT / "policies" / "sharing" / "default.yaml"
AUDIT_SCHEMA = "uk.mash.hub.AuditRecord"

KAI = {"forename": "Kai", "surname": "Dunn", "sex": "M", "incident_type": "MISSING_EPISODE", "child_role": "OTHER",
       "children_present": True, "risk_grading": "MEDIUM", "summary": None, "consent": "NOT_SOUGHT",
       "dob": "2014-01-02", "postcode": "LS1 1AA", "occurred_at": "2026-11-03T10:00:00Z"}


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    return sessionmaker(_engine(tmp_path / "hub.db"), expire_on_commit=False)


def _enriched(tmp_path: Path, sessions: sessionmaker[Session], n: int = 3) -> list[Any]:
    from connectors.registry import build_connector
    from services.enrichment.person_index import PersonIndex
    from services.enrichment.stage import Enricher
    from services.messages import InMessage

    connector = build_connector("police", tmp_path / "connector")
    records = [{**KAI, "ppn_id": f"PPN-S-{i}", "person_ref": f"P-S-{i}", "incident_ref": f"7{i}", "nhs_number": None}
               for i in range(n)]
    inbound = [InMessage("mash.inbound.police.v1", 0, i, b"k",
                         CODEC.encode(connector.to_event(connector.map(r)), connector.schema, check_types=False))
               for i, r in enumerate(records)]
    return [InMessage("mash.enriched.v1", 0, i, m.key, m.value)
            for i, m in enumerate(Enricher(CODEC, PersonIndex(sessions)).process(inbound))]


def _sharer(sessions: sessionmaker[Session], keys: AuditKeys | None = None) -> Any:
    from services.sharing.policy_source import PolicySource
    from services.sharing.stage import Sharer

    return Sharer(CODEC, sessions, PolicySource(POLICY), keys=keys or AuditKeys.of(HUB_KEY))


def _views(out: list[Any]) -> list[Any]:
    return [CODEC.decode(m.value)[0]["views"] for m in out if m.topic == "mash.shared.v1"]


def _event_id(message: Any) -> str:
    return str(CODEC.decode(message.value)[0]["envelope"]["event_id"])


def _honest(tmp_path: Path, event: Any) -> tuple[list[Any], Sealed]:
    """What the hub would decide for `event` (views, and its entry with its set), on a database of its own:
    the decision is a pure function of the policy and the event, so anyone holding the policy can do this."""
    honest = sessionmaker(_engine(tmp_path / "honest.db"), expire_on_commit=False)
    out = _sharer(honest).process([event])
    with honest() as session:
        (entry,) = list(audit_store.read_chains(session))
    return _views(out), entry


def _share_all(decisions: list[dict[str, Any]]) -> str:
    return canonical([{**d, "outcome": "SHARE", "fields_shared": sorted({*d["fields_shared"], *d["fields_withheld"]}),
                       "fields_withheld": [], "rule_ids": ["forged"]} for d in decisions])


def _forge(session: Session, template: Sealed, event_id: str, chain: str, head: Head, *, position: int | None = None,
           signature: str | None = None, key: str | None = None) -> str:
    """What the runtime role may do (SELECT, INSERT): a decision set sharing everything, and an entry naming it
    for `event_id`, sealed onto `head` of `chain`. Returns the forged set's text."""
    forged = _share_all(orjson.loads(template.decisions or "[]"))
    named = digest(forged)
    body = canonical({**template.record, "event_id": event_id, "decisions_digest": named, "chain": chain,
                      "seq": head.seq + 1, "prev_hash": head.hash})
    if session.get(AuditDecisionSetRow, named) is None:
        session.connection().execute(insert(audit_store.SETS), [{"digest": named, "body": forged}])
    row: dict[str, Any] = {"chain": chain, "seq": head.seq + 1, "prev_hash": head.hash, "hash": digest(body),
                           "event_id": event_id, "decision_key": key or f"{event_id}/hub:sharing",
                           "decisions_digest": named, "body": body, "signature": signature}
    if position is not None:
        row["position"] = position
    session.connection().execute(insert(audit_store.ENTRIES), [row])
    return forged


# ===================================================================================================
# 1. "legacy" is decided by a column the attacker writes
# ===================================================================================================


def test_an_unsigned_entry_inserted_at_position_zero_is_not_legacy(tmp_path: Path,
                                                                   sessions: sessionmaker[Session]) -> None:
    """DEFECT (critical; audit_store._sealed `legacy = signature is None and position <= unsigned_through`).
    `position` is the table's serial key, and the runtime role's INSERT may set it: nothing stops an explicit
    value. On a deployment that began signed, unsigned_through is 0, so an entry inserted with position 0
    (or any negative number; on an upgraded one also any gap the sequence left below it) and no signature
    is "legacy": `AuditKeys.problem` accepts it unsigned. The runtime role forges an entry for an event the
    stage has not decided yet, sharing every field with every role: `verify(…, keys)` reports the trail
    intact, and the stage takes the forgery as the event's decision and sends the forged views.
    Expected: legacy must rest on something the runtime role cannot write — e.g. migration 0006 records
    each chain's head (chain, seq, hash) at the upgrade and an unsigned entry is legacy only at or below
    its chain's recorded seq (chains link, so nothing can be inserted below); or a CHECK (position > 0)
    plus positions the role cannot choose (GENERATED ALWAYS AS IDENTITY) — the first is the robust fix."""
    batch = _enriched(tmp_path, sessions, 2)
    _sharer(sessions).process(batch[:1])  # a real decision first: the template, and the chain's head
    honest_views, _ = _honest(tmp_path, batch[1])
    with sessions() as session:
        (real,) = list(audit_store.read_chains(session))
    with sessions.begin() as session:
        _forge(session, real, _event_id(batch[1]), "p0", Head(real.seq, real.hash), position=0)
    with sessions() as session:
        keyed = verify(audit_store.read_chains(session), AuditKeys.of(HUB_KEY))
    sent = _views(_sharer(sessions).process(batch[1:]))
    assert (keyed.broken is not None, sent == honest_views) == (True, True), \
        "(verify names the forged entry, the stage sends the hub's own decision)"


def test_an_unsigned_entry_at_an_ordinary_position_is_refused_by_verify_and_the_stage(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """Held: without the position trick, an unsigned entry appended to the hub's own chain (linking
    correctly to its head) breaks keyed verification, and the stage decides the event afresh."""
    batch = _enriched(tmp_path, sessions, 2)
    _sharer(sessions).process(batch[:1])
    honest_views, _ = _honest(tmp_path, batch[1])
    with sessions() as session:
        (real,) = list(audit_store.read_chains(session))
    with sessions.begin() as session:
        _forge(session, real, _event_id(batch[1]), "p0", Head(real.seq, real.hash))
    with sessions() as session:
        keyed = verify(audit_store.read_chains(session), AuditKeys.of(HUB_KEY))
    assert keyed.broken is not None and "not signed" in keyed.broken.problem
    assert _views(_sharer(sessions).process(batch[1:])) == honest_views


# ===================================================================================================
# 2. Any accepted key may sign any chain
# ===================================================================================================


def test_the_apps_key_cannot_sign_the_hubs_sharing_decisions(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """DEFECT (high; stage._trusted, AuditKeys.problem, docker-compose.yml). Compose gives the hub
    MASH_AUDIT_VERIFY_KEYS = the app's key (so `hub audit verify` can check the app's chain), and the stage
    trusts an entry signed by *any* accepted key. The triage app — the web-facing process, which also
    holds the runtime role — can therefore seal and sign a sharing decision for an event the hub has not
    decided yet, and the hub releases it as its own. The signature binds (chain, seq, hash), not the writer.
    Expected: the stage trusts only its own keys (signing key and its rotated-out ones) for sharing
    decisions; the verifier maps writers to chains (app keys only on `triage-app`, hub keys only on `p*`),
    e.g. by signing the writer's name in the MAC and keeping verify keys per writer."""
    batch = _enriched(tmp_path, sessions, 2)
    hub_keys = AuditKeys.of(HUB_KEY, [APP_KEY])  # as compose configures the hub
    app_keys = AuditKeys.of(APP_KEY)
    _sharer(sessions, hub_keys).process(batch[:1])
    honest_views, _ = _honest(tmp_path, batch[1])
    with sessions() as session:
        (real,) = list(audit_store.read_chains(session))
    with sessions.begin() as session:  # the app, with its own key and the runtime role, on a chain of its own
        forged = _share_all(orjson.loads(real.decisions or "[]"))
        body = canonical({**real.record, "event_id": _event_id(batch[1]), "decisions_digest": digest(forged),
                          "chain": "p5", "seq": 1, "prev_hash": GENESIS})
        session.connection().execute(insert(audit_store.SETS), [{"digest": digest(forged), "body": forged}])
        session.connection().execute(insert(audit_store.ENTRIES), [{
            "chain": "p5", "seq": 1, "prev_hash": GENESIS, "hash": digest(body), "event_id": _event_id(batch[1]),
            "decision_key": f"{_event_id(batch[1])}/hub:sharing", "decisions_digest": digest(forged), "body": body,
            "signature": app_keys.sign("p5", 1, digest(body))}])
    assert _views(_sharer(sessions, hub_keys).process(batch[1:])) == honest_views, \
        "the app's forged decision was released by the hub"


# ===================================================================================================
# 3. Decision sets: first writer wins (ON CONFLICT DO NOTHING), and the stage never checks the digest
# ===================================================================================================


def test_a_set_planted_under_a_future_digest_is_never_sent(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """DEFECT (high; audit_store.append's ON CONFLICT DO NOTHING on audit_decision_sets, stage._seal and
    _trusted). A decision set is a pure function of the policy and the event's facts, so the runtime role
    can compute the digest the hub's next entry will name (here: decided on a database of its own) and
    insert a row under that digest whose body shares everything. The hub's own insert of the set then does
    nothing; its entry is signed and names the right digest, so it is trusted. The first delivery sends the
    views from memory (correct), but a redelivery (a restart, a rebalance) reads the entry back with the
    planted body, never checks it against `decisions_digest`, and sends the forged views. (`verify` does
    name the set as "edited", blaming the hub.) Expected: the stage refuses a stored set whose SHA-256 is
    not its digest (decide afresh, as for an untrusted entry), and `append` checks on conflict that the
    stored body is the one it meant to insert."""
    batch = _enriched(tmp_path, sessions, 2)
    honest_views, entry = _honest(tmp_path, batch[1])
    named = orjson.loads(entry.body)["decisions_digest"]
    with sessions.begin() as session:
        session.connection().execute(insert(audit_store.SETS), [{
            "digest": named, "body": _share_all(orjson.loads(entry.decisions or "[]"))}])
    first = _views(_sharer(sessions).process(batch[1:]))
    again = _views(_sharer(sessions).process(batch[1:]))  # a restarted worker, the batch redelivered
    assert first == honest_views
    assert again == honest_views, "the planted set was sent as the hub's decision on redelivery"


# ===================================================================================================
# 4. The stage's keys after untrusted entries
# ===================================================================================================


def test_two_forged_entries_for_one_event_leave_it_decided_under_the_next_key_and_redelivery_is_idempotent(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """Held: forged (wrongly signed) entries under `<event>/hub:sharing` and `#2` make `_free_key` pick `#3`;
    the fresh entry is the hub's decision, and a redelivery finds it and sends the very same messages."""
    batch = _enriched(tmp_path, sessions, 2)
    _sharer(sessions).process(batch[:1])
    honest_views, _ = _honest(tmp_path, batch[1])
    target = _event_id(batch[1])
    with sessions() as session:
        (real,) = list(audit_store.read_chains(session))
    bogus = "hmac-sha256:" + key_id(b"x" * 32) + ":" + "0" * 64
    with sessions.begin() as session:
        _forge(session, real, target, "p8", Head(), signature=bogus)
        _forge(session, real, target, "p9", Head(), signature=bogus, key=f"{target}/hub:sharing#2")
    out = _sharer(sessions).process(batch[1:])
    again = _sharer(sessions).process(batch[1:])
    assert _views(out) == honest_views
    with sessions() as session:
        keys = sorted(session.scalars(select(AuditRecordRow.decision_key).where(AuditRecordRow.event_id == target)))
    assert keys == [f"{target}/hub:sharing", f"{target}/hub:sharing#2", f"{target}/hub:sharing#3"]
    assert [(m.topic, m.key, m.value) for m in again] == [(m.topic, m.key, m.value) for m in out]


# ===================================================================================================
# 5. The topic: who may produce to mash.audit.v1
# ===================================================================================================


class _FakeConsumer:
    """Just enough of kafka.KafkaConsumer for audit_topic.read_topic: partitions of encoded values."""

    def __init__(self, partitions: dict[int, list[bytes]]) -> None:
        self._partitions = partitions
        self._at: dict[Any, int] = {}
        self._tp: Any = None

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self._partitions)

    def assign(self, tps: list[Any]) -> None:
        (self._tp,) = tps

    def seek_to_beginning(self, tp: Any) -> None:
        self._at[tp] = 0

    def end_offsets(self, tps: list[Any]) -> dict[Any, int]:
        return {tp: len(self._partitions[tp.partition]) for tp in tps}

    def position(self, tp: Any) -> int:
        return self._at[tp]

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        tp = self._tp
        start = self._at[tp]
        values = self._partitions[tp.partition][start:start + max_records]
        self._at[tp] += len(values)
        return {tp: [SimpleNamespace(value=v, offset=start + n) for n, v in enumerate(values)]}

    def close(self) -> None:
        pass


def _topic(monkeypatch: pytest.MonkeyPatch, partitions: dict[int, list[bytes]], **how: Any) -> list[Sealed]:
    """As `mash audit verify` reads it beside the database: legacy only where the database says, and
    messages that are not audit records named (`unreadable`)."""
    monkeypatch.setattr(audit_topic, "KafkaConsumer", lambda **_: _FakeConsumer(partitions))
    return list(audit_topic.read_topic("fake:9092", "mash.audit.v1", CODEC, **{"legacy_through": {}, **how}))


def _on_topic(record: Sealed) -> bytes:
    return CODEC.encode({"chain": record.chain, "seq": record.seq, "prev_hash": record.prev_hash, "hash": record.hash,
                         "body": record.body, "decisions": record.decisions, "signature": record.signature},
                        AUDIT_SCHEMA, check_types=False)


def _signed_chain(name: str, n: int, keys: AuditKeys) -> list[Sealed]:
    sealed = seal(name, Head(), [{"event_id": f"{name}-e{i}"} for i in range(1, n + 1)])
    return [replace(s, signature=keys.sign(s.chain, s.seq, s.hash)) for s in sealed]


def test_one_foreign_record_on_the_topic_does_not_hide_a_truncated_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (medium; audit_chain.verify stops at the first break, cli._check_anchors anchors on
    `topic.heads` of what was read before it). Anyone who may produce to mash.audit.v1 (every writer and, with no
    ACLs, anyone on the broker) appends one unsigned record to partition 0 after its signed ones. The topic
    can never be edited, so from then on `mash audit verify` reports the topic BROKEN for ever (a standing
    alarm operators will learn to ignore) and — worse — the chains on every later partition are never
    anchored: a truncated tail of chain p1 (on partition 1) is not named at all. Expected: a record not
    signed by a held key is reported as foreign and skipped, and anchoring goes on with every signed record
    (verify per chain, not stopping the whole topic at its first bad record)."""
    keys = AuditKeys.of(HUB_KEY)
    p0, p1 = _signed_chain("p0", 3, keys), _signed_chain("p1", 3, keys)
    foreign = seal("p0", Head(3, p0[-1].hash), [{"event_id": "noise"}])[0]
    records = _topic(monkeypatch, {0: [_on_topic(r) for r in [*p0, foreign]], 1: [_on_topic(r) for r in p1]})
    topic = verify(records, keys)
    store = verify([*p0, *p1[:2]], keys)  # the database lost p1's last record
    hashes = {(r.chain, r.seq): r.hash for r in [*p0, *p1[:2]]}
    assert [b.chain for b in topic.foreign] == ["p0"]  # named, and read past
    standing = anchored(store.heads, topic.anchors, lambda chain, seq: hashes.get((chain, seq)))
    assert any("chain p1: records 3..3 are on the topic but not in the database" in p for p in standing.problems), \
        standing.problems


def test_unsigned_records_on_a_partition_not_yet_signed_are_not_anchors(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (medium; audit_topic.read_topic `legacy=not signed_yet`). A partition's unsigned records before
    its first signed one are taken as predating signing — also on a deployment that began signed, and on
    any partition no chain has reached yet (the topic has more partitions than the hub has chains). Anyone
    who may produce there appends unsigned records of a chain of their choosing: they verify as legacy, and
    `anchored` then says "chain p9: 2 records on the topic, none in the database: the chain was deleted"
    (exit 1): a false alarm of deletion anyone can raise, for ever. Expected: the topic's legacy records are
    bounded by what the database records as legacy (migration 0006: no unsigned record anywhere when it
    found no entries), or unsigned records are never anchors."""
    keys = AuditKeys.of(HUB_KEY)
    p0 = _signed_chain("p0", 3, keys)
    planted = seal("p9", Head(), [{"event_id": "x"}, {"event_id": "y"}])
    records = _topic(monkeypatch, {0: [_on_topic(r) for r in p0], 3: [_on_topic(r) for r in planted]})
    topic = verify(records, keys)
    store = verify(p0, keys)
    hashes = {(r.chain, r.seq): r.hash for r in p0}
    assert [b.chain for b in topic.foreign] == ["p9", "p9"]  # not legacy: the database records none for p9
    standing = anchored(store.heads, topic.anchors, lambda chain, seq: hashes.get((chain, seq)))
    assert standing.problems == [], standing.problems


def test_an_undecodable_record_on_the_topic_is_reported_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (low; audit_topic.read_topic). `codec.decode` of a value that is not an audit record (one
    stray produce by anyone with access) raises out of read_topic, so `mash audit verify` ends with a
    traceback instead of a report, for ever (the topic cannot be edited). Expected: the record is named as
    foreign (partition, offset) and the rest is read and verified."""
    keys = AuditKeys.of(HUB_KEY)
    p0 = _signed_chain("p0", 2, keys)
    unreadable: list[str] = []
    records = _topic(monkeypatch, {0: [_on_topic(p0[0]), b"not an avro record", _on_topic(p0[1])]},
                     unreadable=unreadable)
    assert [r.seq for r in records if r.chain == "p0"] == [1, 2]
    assert unreadable == ["partition 0, offset 1: not an audit record (CodecError)"]


def test_a_signed_record_replayed_or_moved_on_the_topic_is_a_repeat_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: a signed record replayed later (or on another partition) is an exact repeat, skipped; the same
    record relabelled to another chain or sequence fails its signature or its sealed body; a body changed
    under a valid signature fails its hash."""
    keys = AuditKeys.of(HUB_KEY)
    p0, p1 = _signed_chain("p0", 3, keys), _signed_chain("p1", 2, keys)
    replayed = _topic(monkeypatch, {0: [_on_topic(r) for r in [*p0, p0[0], p0[1]]], 1: [_on_topic(p0[2]),
                                                                                      *map(_on_topic, p1)]})
    result = verify(replayed, keys)
    assert result.broken is None and result.duplicates == 3 and result.heads["p0"].seq == 3
    moved = replace(p0[0], chain="p1", seq=3, prev_hash=p1[-1].hash)
    broken = verify([*p1, moved], keys).broken
    assert broken is not None and ("differ from its sealed body" in broken.problem
                                   or "signature does not match" in broken.problem)
    resigned = verify([*p1, replace(p1[0], seq=3, prev_hash=p1[-1].hash, body=canonical(
        {**p1[0].record, "seq": 3, "prev_hash": p1[-1].hash}))], keys).broken
    assert resigned is not None and ("does not match its hash" in resigned.problem
                                     or "signature does not match" in resigned.problem)
    rehashed_body = canonical({**p1[0].record, "seq": 3, "prev_hash": p1[-1].hash})
    relabelled = replace(p1[0], seq=3, prev_hash=p1[-1].hash, body=rehashed_body,
                         hash=hashlib.sha256(rehashed_body.encode()).hexdigest())
    broken = verify([*p1, relabelled], keys).broken
    assert broken is not None and "signature does not match" in broken.problem


def test_a_topic_record_whose_body_differs_from_its_hash_is_refused_though_signed() -> None:
    """Held: the signature covers the hash, the hash covers the body: a body swapped under a valid
    signature and hash is named as edited."""
    keys = AuditKeys.of(HUB_KEY)
    p0 = _signed_chain("p0", 2, keys)
    swapped = replace(p0[1], body=canonical({**p0[1].record, "event_id": "other"}))
    broken = verify([p0[0], swapped], keys).broken
    assert broken is not None and broken.seq == 2 and "does not match its hash" in broken.problem


# ===================================================================================================
# 6. The app's sealed decisions after an upgrade
# ===================================================================================================


def _legacy_decision(session: Session, decision_id: str, record: dict[str, Any], row: dict[str, Any]) -> None:
    """An app decision as an older release wrote it: an unsigned entry on the app's chain and its row; then
    migration 0006 (audit_signing_began: every entry so far is legacy)."""
    from services.triage_app.sealed_decisions import AUDIT_CHAIN, entry_key

    text = canonical(record)
    body = {"event_id": record["alert_id"], "person_id": record["person_id"], "kind": "triage_decision",
            "decided_by": "alice", "decided_at": "2026-11-20T09:00:00+00:00", "decisions_digest": digest(text)}
    (sealed,) = seal(AUDIT_CHAIN, audit_store.head(session, AUDIT_CHAIN), [body])
    audit_store.append(session, [audit_store.Entry(sealed, record["alert_id"], entry_key(decision_id), digest(text))],
                       {digest(text): text})
    session.add(TriageDecisionRecord(decision_id=decision_id, alert_id=record["alert_id"], person_id="p1",
                                     outcome="EARLY_HELP", rationale="r", decided_by="alice",
                                     decided_role="triage_worker", rag_at_decision="RED",
                                     decided_at=datetime(2026, 11, 20, 9, tzinfo=UTC), audit_ref="triage-app:1",
                                     **row))
    session.flush()
    session.connection().exec_driver_sql("DELETE FROM audit_signing_began")
    session.connection().exec_driver_sql(
        "INSERT INTO audit_signing_began (chain, unsigned_through) "
        "SELECT chain, MAX(seq) FROM audit_records GROUP BY chain")


RECORD_SINCE_RERATE = {"kind": "triage_decision", "outcome": "EARLY_HELP", "rationale": "r", "decided_role":
                       "triage_worker", "rag_at_decision": "RED", "alert_id": "a1", "person_id": "p1",
                       "alert_revision": 2, "by": "alice", "at": "2026-11-20T09:00:00+00:00"}


def test_a_decision_sealed_before_signing_began_is_as_sealed_after_the_upgrade(sessions: sessionmaker[Session]) -> None:
    """Held: a decision the app made before 0006 (unsigned entry, current record shape, row with its
    alert_revision) is legacy, checks out in verify, and the outbox's check lets it be sent."""
    from services.triage_app.sealed_decisions import check, unsealed_decisions

    decision_id = "00000000-0000-4000-8000-0000000000a1"
    with sessions.begin() as session:
        _legacy_decision(session, decision_id, {**RECORD_SINCE_RERATE, "id": decision_id}, {"alert_revision": 2})
    with sessions() as session:
        assert unsealed_decisions(session, AuditKeys.of(HUB_KEY)) == ([], 1)
        check(session, session.get(TriageDecisionRecord, decision_id), AuditKeys.of(HUB_KEY))  # type: ignore[arg-type]


def test_a_decision_made_before_0004_is_not_reported_tampered_after_the_upgrade(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (high for upgraded deployments; sealed_decisions.differences with CHECKED alert_revision). From
    the rating-change release on (8e91e0e, schema 0003) the app sealed `alert_revision` in every decision's
    record, but the row's alert_revision column only arrived with migration 0004, which added it NULL and
    never backfilled it. After upgrading to 0006, every such decision is reported "DECISION NOT AS SEALED:
    … alert_revision is None, sealed as 2" (verify exits 1 for ever, a standing tamper alarm) and every one
    still unsent is refused by the outbox (send_error, never sent to the hub). Expected: a NULL
    alert_revision on a legacy row is not a difference (or 0006 backfills it from the sealed record)."""
    from services.triage_app.sealed_decisions import check, unsealed_decisions

    decision_id = "00000000-0000-4000-8000-0000000000a2"
    with sessions.begin() as session:
        _legacy_decision(session, decision_id, {**RECORD_SINCE_RERATE, "id": decision_id}, {"alert_revision": None})
    with sessions() as session:
        mismatches, _ = unsealed_decisions(session, AuditKeys.of(HUB_KEY))
        assert mismatches == []
        check(session, session.get(TriageDecisionRecord, decision_id), AuditKeys.of(HUB_KEY))  # type: ignore[arg-type]


def test_a_decision_sealed_by_the_first_app_release_is_not_reported_tampered(sessions: sessionmaker[Session]) -> None:
    """DEFECT (low: that release, 9370232, was soon replaced; sealed_decisions.differences). The first app
    release sealed {"decision_id", "decided_by", "decided_at", …}; later ones {"id", "by", "at", …}.
    `differences` knows only the later shape, so each such decision is "decided_by is 'alice', sealed as
    None; its audit entry is not this decision's; decided_at …" and refused by the outbox. Expected: the
    legacy record shape is read too (decision_id→id, decided_by→by, decided_at→at)."""
    from services.triage_app.sealed_decisions import unsealed_decisions

    decision_id = "00000000-0000-4000-8000-0000000000a3"
    first_release = {"kind": "triage_decision", "decision_id": decision_id, "alert_id": "a1", "person_id": "p1",
                     "outcome": "EARLY_HELP", "rationale": "r", "decided_by": "alice", "decided_role": "triage_worker",
                     "rag_at_decision": "RED", "alert_revision": 1, "decided_at": "2026-11-20T09:00:00+00:00"}
    with sessions.begin() as session:
        _legacy_decision(session, decision_id, first_release, {"alert_revision": 1})
    with sessions() as session:
        assert unsealed_decisions(session, AuditKeys.of(HUB_KEY))[0] == []


@pytest.mark.parametrize("rationale", ["Kai \U0001f9d2 — seen at A&E\u2028next line", "Cafe\u0301 (NFD)", " padded \n"])
def test_a_decision_with_an_unusual_rationale_is_as_sealed(sessions: sessionmaker[Session], rationale: str) -> None:
    """Held: emoji, a line separator, a decomposed accent or surrounding whitespace in a rationale round-trip
    through the sealed record (orjson) and the row unchanged: no false "not as sealed"."""
    from services.triage_app.sealed_decisions import seal_action, unsealed_decisions

    keys = AuditKeys.of(HUB_KEY)
    decision_id = "00000000-0000-4000-8000-0000000000a4"
    at = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    with sessions.begin() as session:
        ref = seal_action(session, keys, {**RECORD_SINCE_RERATE, "rationale": rationale, "id": decision_id,
                                          "at": at.isoformat()})
        session.add(TriageDecisionRecord(decision_id=decision_id, alert_id="a1", person_id="p1", outcome="EARLY_HELP",
                                         rationale=rationale, decided_by="alice", decided_role="triage_worker",
                                         rag_at_decision="RED", decided_at=at, audit_ref=ref, alert_revision=2))
    with sessions() as session:
        assert unsealed_decisions(session, keys) == ([], 1)


def test_a_rating_change_is_not_taken_for_a_decision() -> None:
    """Held: a rating change's sealed record (kind rating_changed) never passes as a decision's, even under
    the same id: `differences` names it."""
    from services.triage_app.sealed_decisions import differences

    row = TriageDecisionRecord(decision_id="d1", alert_id="a1", person_id="p1", outcome="EARLY_HELP", rationale="r",
                               decided_by="alice", decided_role="triage_worker", rag_at_decision="RED",
                               decided_at=datetime(2026, 11, 20, 9, tzinfo=UTC), alert_revision=2)
    rerate = {**RECORD_SINCE_RERATE, "kind": "rating_changed", "id": "d1"}
    assert "its audit entry is not this decision's" in differences(row, rerate)


# ===================================================================================================
# 7. The outbox's cursor: the runtime role moves it
# ===================================================================================================


def test_a_cursor_moved_past_the_apps_chain_is_not_silently_unanchored(sessions: sessionmaker[Session]) -> None:
    """DEFECT (medium; outbox._send_audit trusts audit_topic_cursor, anchored() calls it "behind"). The cursor
    is an ordinary table the runtime role may UPDATE. Set to 10**9, the outbox never publishes another app
    entry (it reads entries after the cursor), and `mash audit verify` prints only "note: chain triage-app:
    records 1..N are not on the topic yet" and exits 0: the app's decisions are never anchored, so an owner
    who later deletes or rewrites them (with a stolen key) is not seen. Expected: the outbox resumes after
    the last record actually on the topic for its chain (or verify treats a cursor beyond the topic's head,
    or a chain behind the topic by more than an in-flight window, as a problem)."""
    from mash.models import AuditTopicCursorRow
    from services.triage_app.outbox import Outbox
    from tests.support.triage_data import sealed_decision

    with sessions.begin() as session:
        session.add(AuditTopicCursorRow(chain="triage-app", seq=10**9))  # the runtime role: rows on ordinary tables
    with sessions.begin() as session:
        for n in range(3):
            sealed_decision(session, f"00000000-0000-4000-8000-00000000003{n}", "EARLY_HELP",
                            datetime(2026, 12, 1, 9, n, tzinfo=UTC))
    outbox = Outbox(sessions, "fake:9092", "d", "a", CODEC, "mash.audit.v1")
    published: list[tuple[str, bytes]] = []

    def send(topic: str, messages: Sequence[tuple[str, bytes]]) -> list[bool]:
        if topic == "mash.audit.v1":
            published.extend(messages)
        return [True] * len(messages)

    outbox._send = send  # type: ignore[method-assign]  # the broker, acknowledging everything
    outbox.flush()
    with sessions() as session:
        store = verify(audit_store.read_chains(session), None).heads
    on_topic = [Sealed(**CODEC.decode(m)[0]) for _, m in published]
    topic_heads = verify(on_topic).heads
    standing = anchored(store, topic_heads, lambda chain, seq: None)
    assert published or standing.problems, f"nothing published, and only notes: {standing.behind}"


# ===================================================================================================
# 8. Keys
# ===================================================================================================


def _settings(state_dir: Path, key: str = "", verify_keys: str = "") -> Settings:
    return Settings(state_dir=state_dir, audit_signing_key=SecretStr(key), audit_verify_keys=SecretStr(verify_keys))


def _key_in(state_dir: str, out: Any) -> None:
    from services.sharing.audit_keys import audit_keys

    out.put(audit_keys(_settings(Path(state_dir))).signing_id)


def test_processes_starting_at_once_on_a_new_state_dir_agree_on_one_key(tmp_path: Path) -> None:
    """Held: eight processes making the embedded key at the same moment all end with the same key, the file
    is the owner's only (0600), and no draft is left behind."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    procs = [context.Process(target=_key_in, args=(str(tmp_path / "state"), out)) for _ in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    ids = {out.get(timeout=5) for _ in procs}
    assert len(ids) == 1
    key_file = tmp_path / "state" / "audit-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["audit-signing.key"]


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    """Held: a key file that is a symlink (to a key an attacker knows, or a dangling one) is refused."""
    from services.sharing.audit_keys import audit_keys

    state = tmp_path / "state"
    state.mkdir()
    known = tmp_path / "known.key"
    known.write_text(secrets.token_urlsafe(48))
    (state / "audit-signing.key").symlink_to(known)
    with pytest.raises(RuntimeError, match="not a regular file"):
        audit_keys(_settings(state))
    (state / "audit-signing.key").unlink()
    (state / "audit-signing.key").symlink_to(tmp_path / "missing.key")
    with pytest.raises(RuntimeError, match="not a regular file"):
        audit_keys(_settings(state))


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    """DEFECT (low; audit_keys._embedded_key). The key file is made 0600, but one found with wider modes (a
    copy restored from a backup, a state directory shared by mistake, an image layer) is used silently:
    anyone who can read it signs entries the stage trusts. Expected: refuse (or at least warn about) a key
    file whose mode grants group or others anything, or that another user owns, as ssh does."""
    from services.sharing.audit_keys import audit_keys

    state = tmp_path / "state"
    state.mkdir()
    key_file = state / "audit-signing.key"
    key_file.write_text(secrets.token_urlsafe(48))
    os.chmod(key_file, 0o644)
    with pytest.raises(RuntimeError):
        audit_keys(_settings(state))


def test_keys_from_the_environment_are_trimmed_deduplicated_and_held_to_their_length(tmp_path: Path) -> None:
    """Held: a key with a trailing newline (a secret file read into the environment) is the same key; the
    signing key repeated in the verify list is one key; a short key is refused, also among the verify keys."""
    from services.sharing.audit_keys import audit_keys
    from services.sharing.audit_signing import WeakKey

    key = secrets.token_urlsafe(48)
    plain = audit_keys(_settings(tmp_path, key))
    padded = audit_keys(_settings(tmp_path, f"  {key}\n", f"{key}, {key}\n"))
    assert plain.signing_id == padded.signing_id and list(padded.accepted) == [plain.signing_id]
    entry = seal("p0", Head(), [{"event_id": "e"}])[0]
    assert padded.problem("p0", 1, entry.hash, plain.sign("p0", 1, entry.hash)) is None
    with pytest.raises(WeakKey):
        audit_keys(_settings(tmp_path, "short"))
    with pytest.raises(WeakKey):
        audit_keys(_settings(tmp_path, key, "short"))
    assert not (tmp_path / "audit-signing.key").exists()  # a configured key never makes a file


def test_a_malformed_or_unknown_signature_is_refused() -> None:
    """Held: malformed signatures, another key's id, the right id with a wrong MAC, and a MAC of another
    (chain, seq) are all refused; only unsigned *legacy* entries pass unsigned."""
    keys = AuditKeys.of(HUB_KEY)
    entry = seal("p0", Head(), [{"event_id": "e"}])[0]
    good = keys.sign("p0", 1, entry.hash)
    assert keys.problem("p0", 1, entry.hash, good) is None
    for bad in ["", "hmac-sha256", "hmac-sha256::", f"hmac-sha256:{keys.signing_id}:",
                good.replace("hmac-sha256", "hmac-md5"), good[:-1] + ("0" if good[-1] != "0" else "1"),
                AuditKeys.of(APP_KEY).sign("p0", 1, entry.hash), keys.sign("p1", 1, entry.hash),
                keys.sign("p0", 2, entry.hash)]:
        assert keys.problem("p0", 1, entry.hash, bad) is not None, bad
    assert keys.problem("p0", 1, entry.hash, None) is not None
    assert keys.problem("p0", 1, entry.hash, None, legacy=True) is None
