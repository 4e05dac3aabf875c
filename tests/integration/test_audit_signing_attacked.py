"""Adversarial review of signed audit entries, against the real database grants and broker: what the
processes' runtime role (PostgreSQL: SELECT, INSERT on the audit; rows of ordinary tables) can still do.

A test marked xfail(strict) names a DEFECT (docstring: where, what happens, what is expected); see
tests/unit/test_audit_signing_attacked.py for the same attacks in process."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import sessionmaker

from mash.codec import Codec
from mash.db import make_engine, session_factory
from mash.kafka_security import TRIAGE_APP, kafka_python_options
from mash.models import AuditTopicCursorRow, Base
from mash.settings import Settings
from mash.topics import AUDIT, DECISIONS, MATCH_ANSWERS, topic_name
from services.sharing import audit_store
from services.sharing.audit_chain import canonical
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.triage_app.outbox import Outbox
from tests.integration.conftest import mash, owner_of, ready_engine
from tests.integration.test_sharing import DEFAULT_POLICY, enriched, feed, shared_events
from tests.support.triage_data import sealed_decision

CODEC = Codec()


@pytest.fixture
def db_only(database_url: str, tmp_path: Path) -> Iterator[tuple[Settings, Engine]]:
    """The database as a deployment has it (migrated by the owner, the runtime role granted), no broker."""
    settings = Settings(state_dir=tmp_path, database_url=SecretStr(database_url), bootstrap_servers="127.0.0.1:9",
                        database_owner_url=SecretStr(owner_of(database_url)))
    engine = ready_engine(settings)
    yield settings, engine
    engine.dispose()


def test_the_runtime_role_forges_a_legacy_entry_by_choosing_its_position(
        db_only: tuple[Settings, Engine], tmp_path: Path) -> None:
    """DEFECT (critical; audit_store._sealed: legacy = unsigned and position <= audit_signing_began.unsigned_through).
    As the runtime role (PostgreSQL: GRANT SELECT, INSERT on audit_records — an INSERT may name the serial
    `position`), insert an unsigned entry at position -1, linked onto the head of the hub's chain p0, for an
    event not yet decided, naming a decision set that shares everything. `mash audit verify --database-only`
    reports it intact (signatures checked), and the sharing stage takes it as the event's decision and sends
    every field to every role. Expected: exit 1 naming the entry, and the event decided afresh. Fix: decide
    legacy by what the runtime role cannot write (0006 records each chain's (seq, hash) at the upgrade; an
    unsigned entry is legacy only at or below its chain's recorded seq)."""
    settings, engine = db_only
    sessions = session_factory(engine)
    batch = enriched(sessions, feed(3), tmp_path)  # partitions 0, 1, 0: chains p0, p1
    Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch[:2])
    honest_engine = create_engine(f"sqlite:///{tmp_path / 'honest.db'}")
    Base.metadata.create_all(honest_engine)
    honest = shared_events(Sharer(CODEC, sessionmaker(honest_engine), PolicySource(DEFAULT_POLICY)).process(batch[2:]))
    target = CODEC.decode(batch[2].value)[0]["envelope"]["event_id"]
    with sessions() as session:
        real = [e for e in audit_store.read_chains(session) if e.chain == "p0"][-1]
    forged = canonical([{**d, "outcome": "SHARE", "fields_shared": sorted({*d["fields_shared"], *d["fields_withheld"]}),
                         "fields_withheld": []} for d in orjson.loads(real.decisions or "[]")])
    named = hashlib.sha256(forged.encode()).hexdigest()
    body = canonical({**real.record, "event_id": target, "decisions_digest": named, "chain": "p0",
                      "seq": real.seq + 1, "prev_hash": real.hash})
    with sessions.begin() as session:  # the runtime role on PostgreSQL
        session.execute(insert(audit_store.SETS), [{"digest": named, "body": forged}])
        session.execute(insert(audit_store.ENTRIES), [{
            "position": -1, "chain": "p0", "seq": real.seq + 1, "prev_hash": real.hash,
            "hash": hashlib.sha256(body.encode()).hexdigest(), "event_id": target,
            "decision_key": f"{target}/hub:sharing", "decisions_digest": named, "body": body, "signature": None}])
    result = mash(settings, "audit", "verify", "--database-only", check=False)
    sent = shared_events(Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch[2:]))
    assert (result.returncode, [e["views"] for e in sent]) == (1, [e["views"] for e in honest]), result.stdout


@pytest.fixture
def engine(provisioned: Settings) -> Iterator[Engine]:
    engine = ready_engine(provisioned)
    yield engine
    engine.dispose()


def test_a_moved_cursor_leaves_the_apps_chain_unanchored_and_its_deletion_unseen(
        provisioned: Settings, engine: Engine) -> None:
    """DEFECT (medium; outbox._send_audit, audit_chain.anchored's `behind`). The runtime role sets
    audit_topic_cursor('triage-app') to 10**9 (an ordinary table: it may). The app goes on deciding; its outbox
    sends the decisions but publishes none of its audit entries, and `mash audit verify` exits 0 with a note
    ("not on the topic yet"). The owner later deletes the last decision, its row and its entry (the tail of the
    chain): verify still exits 0, since nothing anchors it. Expected: the outbox resumes after the last record
    actually on the topic for its chain, or verify reports a chain whose cursor is past the topic's head (or
    that is long behind it) as a problem."""
    sessions = session_factory(engine)
    with sessions.begin() as session:  # the runtime role
        session.add(AuditTopicCursorRow(chain="triage-app", seq=10**9))
    with sessions.begin() as session:
        for n in range(3):
            sealed_decision(session, f"00000000-0000-4000-8000-00000000005{n}", "EARLY_HELP",
                            datetime(2026, 12, 1, 9, n, tzinfo=UTC))
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic_name(DECISIONS, provisioned),
                    topic_name(MATCH_ANSWERS, provisioned), CODEC, topic_name(AUDIT, provisioned),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    try:
        outbox.flush()
    finally:
        outbox.close()
    before = mash(provisioned, "audit", "verify", check=False)
    owner = make_engine(owner_of(provisioned.sqlalchemy_url()) or provisioned.sqlalchemy_url())
    with owner.begin() as db:
        if owner.dialect.name == "sqlite":
            db.execute(text("DROP TRIGGER audit_records_no_delete"))
        else:
            db.execute(text("DROP TRIGGER audit_records_append_only ON audit_records"))
        db.execute(text("DELETE FROM audit_records WHERE chain = 'triage-app' AND seq = 3"))
        db.execute(text("DELETE FROM triage_decisions WHERE decision_id = '00000000-0000-4000-8000-000000000052'"))
    owner.dispose()
    after = mash(provisioned, "audit", "verify", check=False)
    assert before.returncode == 0 and "chain triage-app: last record 3" in before.stdout  # published again
    assert after.returncode == 1, after.stdout + after.stderr
