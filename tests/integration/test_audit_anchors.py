"""The audit trail cannot be rewritten by those who write it, nor unseen by those who own the database.

Each attack of issue 16 is tried on the real broker and both databases (PostgreSQL as the processes'
runtime role where that role is the attacker, as the schema owner where only the owner could do it),
and `mash audit verify` must name it. The signed records on `mash.audit.v1` are the anchors: what the
database loses or rewrites after they were published shows against them, even when the rewritten
chain is internally whole and signed with a stolen key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.db import make_engine, session_factory
from mash.kafka_security import TRIAGE_APP, kafka_python_options
from mash.models import AuditRecordRow, TriageDecisionRecord
from mash.settings import Settings, get_settings
from mash.topics import AUDIT, DECISIONS, MATCH_ANSWERS, topic_name
from services.messages import OutMessage
from services.sharing import audit_store
from services.sharing.audit_chain import GENESIS, canonical
from services.sharing.audit_keys import audit_keys
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.triage_app.outbox import Outbox
from tests.integration.conftest import mash, owner_of, ready_engine
from tests.integration.test_sharing import DEFAULT_POLICY, _drop_guards, enriched, feed
from tests.support.bus import operator_client
from tests.support.triage_data import sealed_decision

CODEC = Codec()


@pytest.fixture
def engine(provisioned: Settings) -> Iterator[Engine]:
    engine = ready_engine(provisioned)
    yield engine
    engine.dispose()


def _shared_and_published(provisioned: Settings, engine: Engine, tmp_path: Path, n: int = 12) -> list[OutMessage]:
    """The sharing stage's decisions for `n` events, committed and their audit records on the topic."""
    sessions = session_factory(engine)
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(enriched(sessions, feed(n), tmp_path))
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    for message in out:
        if message.topic == AUDIT:
            producer.send(topic_name(AUDIT, provisioned), key=message.key, value=message.value)
    producer.flush()
    producer.close()
    return out


def _owner(provisioned: Settings) -> Engine:
    """What only the schema owner could do: the append-only guards dropped first."""
    engine = make_engine(owner_of(provisioned.sqlalchemy_url()) or provisioned.sqlalchemy_url())
    _drop_guards(engine)
    return engine


def _chains(engine: Engine) -> dict[str, list[AuditRecordRow]]:
    with Session(engine) as session:
        rows = session.scalars(select(AuditRecordRow).order_by(AuditRecordRow.chain, AuditRecordRow.seq)).all()
        session.expunge_all()
    chains: dict[str, list[AuditRecordRow]] = {}
    for row in rows:
        chains.setdefault(row.chain, []).append(row)
    return chains


def test_an_intact_trail_is_anchored_by_the_topic(provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    _shared_and_published(provisioned, engine, tmp_path)
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 0, result.stderr
    assert "intact" in result.stdout and "anchored: the database holds every one of the" in result.stdout


def test_a_truncated_tail_is_seen_only_against_the_topic(provisioned: Settings, engine: Engine,
                                                         tmp_path: Path) -> None:
    _shared_and_published(provisioned, engine, tmp_path)
    chain, rows = max(_chains(engine).items(), key=lambda item: len(item[1]))
    owner = _owner(provisioned)
    with owner.begin() as db:
        db.execute(text("DELETE FROM audit_records WHERE chain = :c AND seq > :s"), {"c": chain, "s": len(rows) - 2})
    owner.dispose()
    alone = mash(provisioned, "audit", "verify", "--database-only", check=False)
    assert alone.returncode == 0  # what is left is a whole chain: the database alone cannot tell
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 1
    assert f"chain {chain}: records {len(rows) - 1}..{len(rows)} are on the topic but not in the database" \
           in result.stderr, result.stderr


def test_a_whole_chain_deleted_is_named(provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    _shared_and_published(provisioned, engine, tmp_path)
    chain = sorted(_chains(engine))[0]
    owner = _owner(provisioned)
    with owner.begin() as db:
        db.execute(text("DELETE FROM audit_records WHERE chain = :c"), {"c": chain})
    owner.dispose()
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 1 and f"chain {chain}: " in result.stderr and "the chain was deleted" in result.stderr


@pytest.mark.parametrize("with_key", [False, True], ids=["without-the-key", "with-a-stolen-key"])
def test_a_chain_rewritten_and_rehashed_is_named(with_key: bool, provisioned: Settings, engine: Engine,
                                                 tmp_path: Path) -> None:
    """The owner edits a record and reseals every one after it, so the chain links again. Without the
    key its signatures give it away; with a stolen key only the topic's anchors can, and do."""
    _shared_and_published(provisioned, engine, tmp_path)
    chain, rows = max(_chains(engine).items(), key=lambda item: len(item[1]))
    keys = audit_keys(get_settings())
    owner = _owner(provisioned)
    with owner.begin() as db:
        prev = rows[0].prev_hash
        for n, row in enumerate(rows):
            body = orjson.loads(row.body)
            if n == 1:
                body["decided_by"] = "someone else"
            body["prev_hash"] = prev
            sealed = canonical(body)
            digest = hashlib.sha256(sealed.encode()).hexdigest()
            signature = keys.sign(chain, row.seq, digest) if with_key else row.signature
            db.execute(text("UPDATE audit_records SET body = :b, hash = :h, prev_hash = :p, signature = :s "
                            "WHERE position = :pos"),
                       {"b": sealed, "h": digest, "p": prev, "s": signature, "pos": row.position})
            prev = digest
    owner.dispose()
    alone = mash(provisioned, "audit", "verify", "--database-only", check=False)
    if with_key:
        assert alone.returncode == 0  # whole, and signed: only the anchors can tell
    else:
        assert alone.returncode == 1 and f"chain {chain}, record {rows[1].seq} " in alone.stderr
        assert "signature does not match" in alone.stderr, alone.stderr
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 1
    assert f"chain {chain}: record {len(rows)} in the database differs from the topic's" in result.stderr or \
           "signature does not match" in result.stderr, result.stderr


def test_an_entry_forged_by_the_runtime_role_is_not_trusted_and_is_named(
        provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """The processes' role may append: it appends a decision sharing everything for an event the
    sharing stage has not decided yet. The stage decides it afresh and verify names the forgery."""
    sessions = session_factory(engine)  # the runtime role on PostgreSQL
    batch = enriched(sessions, feed(3), tmp_path)
    target = CODEC.decode(batch[2].value)[0]["envelope"]["event_id"]
    honest = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch[:2])
    with sessions() as session:
        real, *_ = list(audit_store.read_chains(session))
    forged_set = canonical([{**d, "outcome": "SHARE", "fields_shared": sorted({*d["fields_shared"],
                                                                              *d["fields_withheld"]}),
                             "fields_withheld": []} for d in orjson.loads(real.decisions or "[]")])
    forged_digest = hashlib.sha256(forged_set.encode()).hexdigest()
    body = canonical({**real.record, "event_id": target, "decisions_digest": forged_digest, "chain": "p7",
                      "seq": 1, "prev_hash": GENESIS})
    with sessions.begin() as session:
        session.execute(insert(audit_store.SETS), [{"digest": forged_digest, "body": forged_set}])
        session.execute(insert(audit_store.ENTRIES), [{
            "chain": "p7", "seq": 1, "prev_hash": GENESIS, "hash": hashlib.sha256(body.encode()).hexdigest(),
            "event_id": target, "decision_key": f"{target}/hub:sharing", "decisions_digest": forged_digest,
            "body": body, "signature": "hmac-sha256:000000000000:" + "0" * 64}])
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch[2:])
    (shared,) = [CODEC.decode(m.value)[0] for m in out if m.topic.endswith("shared.v1")]
    assert shared["event_id"] == target and shared["audit_ref"] != "p7:1"  # decided afresh, not as forged
    views = {v["role"]: v for v in shared["views"]}
    assert any(v["outcome"] != "SHARE" for v in views.values())  # the default policy withholds something
    with sessions() as session:
        keys = [row for row in session.scalars(select(AuditRecordRow.decision_key)
                                               .where(AuditRecordRow.event_id == target))]
    assert sorted(keys) == [f"{target}/hub:sharing", f"{target}/hub:sharing#2"]
    result = mash(provisioned, "audit", "verify", "--database-only", check=False)
    assert result.returncode == 1 and "chain p7, record 1 " in result.stderr, result.stderr
    assert "which this verifier does not hold" in result.stderr
    assert honest  # the honest events were shared


def _decided(sessions: sessionmaker[Session]) -> str:
    decision_id = "00000000-0000-4000-8000-0000000000d1"
    with sessions.begin() as session:
        sealed_decision(session, decision_id, "STRATEGY_DISCUSSION_S47", datetime(2026, 12, 1, 9, tzinfo=UTC))
    return decision_id


def test_a_decision_row_edited_by_the_runtime_role_is_named_and_never_sent(
        provisioned: Settings, engine: Engine) -> None:
    sessions = session_factory(engine)
    decision_id = _decided(sessions)
    with sessions.begin() as session:  # the processes' role may update decision rows (the outbox marks them sent)
        session.execute(text("UPDATE triage_decisions SET outcome = 'NO_FURTHER_ACTION' WHERE decision_id = :d"),
                        {"d": decision_id})
    result = mash(provisioned, "audit", "verify", "--database-only", check=False)
    assert result.returncode == 1
    assert f"DECISION NOT AS SEALED: decision {decision_id}" in result.stderr
    assert "'NO_FURTHER_ACTION', sealed as 'STRATEGY_DISCUSSION_S47'" in result.stderr, result.stderr
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic_name(DECISIONS, provisioned),
                    topic_name(MATCH_ANSWERS, provisioned), CODEC, topic_name(AUDIT, provisioned),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    try:
        outbox.flush()
    finally:
        outbox.close()
    with sessions() as session:
        row = session.get(TriageDecisionRecord, decision_id)
        assert row is not None and row.published_at is None
        assert row.send_error is not None and "not as sealed in the audit trail" in row.send_error


def test_the_apps_chain_is_published_and_anchored(provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """The app's own chain goes to the topic (in order, once), so losing an app entry from the
    database shows like losing a hub entry."""
    _shared_and_published(provisioned, engine, tmp_path, n=4)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        for n in range(3):
            sealed_decision(session, f"00000000-0000-4000-8000-00000000001{n}", "EARLY_HELP",
                            datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(minutes=n))
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic_name(DECISIONS, provisioned),
                    topic_name(MATCH_ANSWERS, provisioned), CODEC, topic_name(AUDIT, provisioned),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    try:
        assert outbox.flush() == 6  # three audit records and three decisions
        assert outbox.flush() == 0  # each once
    finally:
        outbox.close()
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 0, result.stderr
    assert "chain triage-app: last record 3" in result.stdout and "triage decisions: 3 checked" in result.stdout
    owner = _owner(provisioned)
    with owner.begin() as db:
        db.execute(text("DELETE FROM audit_records WHERE chain = 'triage-app' AND seq = 3"))
    owner.dispose()
    result = mash(provisioned, "audit", "verify", check=False)
    assert result.returncode == 1 and "chain triage-app: records 3..3 are on the topic" in result.stderr
