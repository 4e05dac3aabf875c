"""The sharing stage on both databases, the audit trail's tamper evidence, and the policy's
consent rules end to end through the real broker."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import SecretStr
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from connectors.registry import build_connector
from mash.codec import Codec
from mash.db import make_engine, session_factory
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.models import AuditRecordRow
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import AUDIT, SHARED, inbound, provision, topic_name
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import Enricher
from services.messages import InMessage, OutMessage
from services.sharing import audit_store
from services.sharing.audit_chain import Head, verify
from services.sharing.audit_topic import read_topic
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.sharing.vocabulary import ROLES
from tests.integration.conftest import mash, owner_of, ready_engine, wait_for
from tests.integration.test_identity import police
from tests.support.bus import operator_client

DEFAULT_POLICY = PROJECT_ROOT / "policies" / "sharing" / "default.yaml"
CODEC = Codec()


@pytest.fixture
def db_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, database_url=SecretStr(database_url),
                    database_owner_url=SecretStr(owner_of(database_url)))


@pytest.fixture
def sessions(db_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = ready_engine(db_settings)
    yield session_factory(engine)
    engine.dispose()


def enriched(sessions: sessionmaker[Session], records: list[dict[str, Any]], tmp_path: Path) -> list[InMessage]:
    """Police records through the real connector mapping and enrichment stage, as enriched messages."""
    connector = build_connector("police", tmp_path / "connectors")
    inbound_messages = [InMessage(inbound("police"), 0, n, None,
                                  CODEC.encode(connector.to_event(connector.map(r)), connector.schema))
                        for n, r in enumerate(records)]
    out = Enricher(CODEC, PersonIndex(sessions)).process(inbound_messages)
    return [InMessage("mash.enriched.v1", n % 2, n, m.key, m.value) for n, m in enumerate(out)]


def shared_events(out: list[OutMessage]) -> list[dict[str, Any]]:
    return [CODEC.decode(m.value)[0] for m in out if m.topic == SHARED]


def views_of(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["role"]: v for v in event["views"]}


def feed(n: int = 6) -> list[dict[str, Any]]:
    return [police(i, f"P-{i}", None, f"2014-0{1 + i % 8}-1{i % 9}", "LS1 1AA", 1 + i) for i in range(n)]


def test_every_event_gets_one_sealed_entry_with_a_decision_per_role_and_views_carry_only_what_was_shared(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    sharer = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY))
    out = sharer.process(enriched(sessions, feed(), tmp_path))
    events = shared_events(out)
    assert len(events) == 6 and all(len(e["views"]) == len(ROLES) for e in events)
    with sessions() as session:
        assert audit_store.count(session) == 6
        assert verify(audit_store.read_chains(session)).broken is None
        for event in events:
            (entry,) = audit_store.for_event(session, event["event_id"])
            decided = {d["recipient_role"]: d for d in orjson.loads(entry.decisions or "[]")}
            assert set(decided) == set(ROLES)
            for role, view in views_of(event).items():
                assert view["fields"] == decided[role]["fields_shared"]
                assert not set(view["fields"]) & set(decided[role]["fields_withheld"])
            anyone = {name for view in event["views"] for name in view["fields"]}
            values = orjson.loads(event["values"])
            assert {f"{section}.{key}" for section, keys in values.items() for key in keys} == anyone
            # (a value no role may see is not on the topic)
    school = views_of(events[0])["education_safeguarding_lead"]
    assert "payload.summary" not in school["fields"]
    assert [m.topic for m in out].count(AUDIT) == 6


def test_a_redelivered_batch_is_sent_as_first_decided_and_records_nothing_new(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    batch = enriched(sessions, feed(4), tmp_path)
    first = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch)
    again = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch + batch[:1])
    with sessions() as session:
        assert audit_store.count(session) == 4
    assert [m.value for m in again[:len(first)]] == [m.value for m in first]
    assert again[len(first)].value == first[0].value  # the repeat within the batch: decided once


def test_an_event_twice_in_one_batch_is_decided_and_recorded_once(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    batch = enriched(sessions, feed(3), tmp_path)
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batch + batch[:1])
    events = shared_events(out)
    assert len(events) == 4 and events[3]["audit_ref"] == events[0]["audit_ref"]
    with sessions() as session:
        assert audit_store.count(session) == 3


def test_a_revisions_entry_names_the_revision_it_supersedes_and_a_late_one_the_revision_that_superseded_it(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Three revisions of one PPN (stamped 10:00, 11:00, 12:00): the first two in one batch, then the
    last, then the first's predecessor arriving late (09:00). Each entry says where it stands."""
    def revision(grading: str, hour: int) -> dict[str, Any]:
        return {**feed(1)[0], "risk_grading": grading, "updated_at": f"2026-11-10T{hour:02d}:00:00Z"}

    sharer = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY))
    batches = [[revision("STANDARD", 10), revision("MEDIUM", 11)], [revision("HIGH", 12)],
               [revision("STANDARD", 9)]]
    ids = [[e["event_id"] for e in shared_events(sharer.process(enriched(sessions, b, tmp_path)))] for b in batches]
    (r10, r11), (r12,), (r9,) = ids
    with sessions() as session:
        bodies = {e: orjson.loads(audit_store.for_event(session, e)[0].body) for e in (r9, r10, r11, r12)}
        assert verify(audit_store.read_chains(session)).broken is None
    assert "supersedes" not in bodies[r10] and "superseded_by" not in bodies[r10]
    assert bodies[r11]["supersedes"]["event_id"] == r10  # within one batch
    assert bodies[r12]["supersedes"] == {"event_id": r11, "revision": bodies[r11]["revision"],
                                         "revised_at": bodies[r11]["revised_at"]}
    assert bodies[r9]["superseded_by"]["event_id"] == r12 and "supersedes" not in bodies[r9]
    from services.sharing.explain import explain
    said = explain([{**bodies[r12], "decisions": []}])
    assert f"It supersedes event {r11}" in said and "revised at 2026-11-10T11:00:00.000+00:00" in said


def test_losing_a_race_for_the_chain_head_retries_and_leaves_the_chain_intact(
        sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batches = enriched(sessions, feed(8), tmp_path)
    Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batches[:4])
    real_head, stale = audit_store.head, iter([True])

    def head_as_another_worker_saw_it(session: Session, chain: str) -> Head:
        return Head() if next(stale, False) else real_head(session, chain)  # first read: before their append

    monkeypatch.setattr(audit_store, "head", head_as_another_worker_saw_it)
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(batches[4:] + batches[4:5])
    with sessions() as session:
        assert audit_store.count(session) == 8
        assert verify(audit_store.read_chains(session)).broken is None
    refs = [e["audit_ref"] for e in shared_events(out)]
    assert len(refs) == 5 and refs[0] == refs[4]  # the repeat carries its first copy's (committed) entry
    with sessions() as session:
        stored = {f"{s.chain}:{s.seq}" for s in audit_store.read_chains(session)}
    assert set(refs) <= stored


def test_the_database_refuses_to_update_or_delete_audit_records(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(enriched(sessions, feed(1), tmp_path))
    for statement in ("UPDATE audit_records SET body = 'x'", "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match=r"append-only|permission denied"), sessions.begin() as session:
            session.execute(text(statement))


def test_the_processes_role_cannot_rewrite_truncate_or_unguard_the_audit_trail_on_postgresql(
        sessions: sessionmaker[Session], db_settings: Settings, tmp_path: Path) -> None:
    """The processes connect as a role that owns nothing (`mash db upgrade` grants it rows, and on the
    audit tables only SELECT and INSERT): every way it could rewrite the trail is refused, while the
    hub's own work goes on as that role."""
    postgresql = sessions.kw["bind"].dialect.name == "postgresql"
    assert not postgresql or db_settings.database_owner_url.get_secret_value(), \
        "set MASH_TEST_POSTGRES_OWNER_URL too (infra/postgres/test-cluster.sh prints both URLs)"
    Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(enriched(sessions, feed(3), tmp_path))
    attacks = [
        "UPDATE audit_records SET body = 'x'", "DELETE FROM audit_records", "TRUNCATE audit_records",
        "TRUNCATE audit_decision_sets", "UPDATE audit_decision_sets SET body = '[]'",
        "ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only",
        "DROP TRIGGER audit_records_append_only ON audit_records", "DROP TABLE audit_records",
        "ALTER TABLE audit_records ADD COLUMN note text", "CREATE TABLE shadow (x int)",
        "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN NEW; END $$",
        "UPDATE alembic_version SET version_num = '0001'",
    ] if postgresql else ["UPDATE audit_records SET body = 'x'", "DELETE FROM audit_records",
                          "UPDATE audit_decision_sets SET body = '[]'"]  # SQLite has no roles: its triggers only
    refused = r"permission denied|must be owner|append-only"
    for statement in attacks:
        with pytest.raises(DBAPIError, match=refused), sessions.begin() as session:
            session.execute(text(statement))
    with sessions() as session:
        assert audit_store.count(session) == 3
        assert verify(audit_store.read_chains(session)).broken is None


def _drop_guards(engine: Engine) -> None:
    """What only someone with the database's owner rights could do before tampering."""
    with engine.begin() as db:
        for table in ("audit_records", "audit_decision_sets"):
            if engine.dialect.name == "sqlite":
                db.execute(text(f"DROP TRIGGER {table}_no_update"))
                db.execute(text(f"DROP TRIGGER {table}_no_delete"))
            else:
                db.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder", "edit-decisions", "delete-decisions"])
def test_tampering_with_the_sql_trail_is_named_by_audit_verify(
        tamper: str, sessions: sessionmaker[Session], db_settings: Settings, tmp_path: Path) -> None:
    Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(enriched(sessions, feed(12), tmp_path))
    assert "intact" in mash(db_settings, "audit", "verify", "--database-only").stdout
    engine = make_engine(db_settings.owner_url())  # the tamperer has the owner's rights
    _drop_guards(engine)
    with engine.begin() as db:
        rows = db.execute(select(AuditRecordRow.position, AuditRecordRow.chain, AuditRecordRow.seq,
                                 AuditRecordRow.body, AuditRecordRow.decisions_digest)
                          .order_by(AuditRecordRow.chain, AuditRecordRow.seq)).all()
        target = rows[7]
        first_naming = next(r for r in rows if r.decisions_digest == target.decisions_digest)
        if tamper == "edit":
            db.execute(text("UPDATE audit_records SET body = :b WHERE position = :p"),
                       {"b": target.body.replace('"decided_by":"hub:sharing"', '"decided_by":"someone"'),
                        "p": target.position})
        elif tamper == "delete":
            db.execute(text("DELETE FROM audit_records WHERE position = :p"), {"p": target.position})
        elif tamper == "reorder":  # swap the sequence numbers of two records
            after = rows[8]
            db.execute(text("UPDATE audit_records SET seq = -1 WHERE position = :p"), {"p": target.position})
            db.execute(text("UPDATE audit_records SET seq = :s WHERE position = :p"),
                       {"s": target.seq, "p": after.position})
            db.execute(text("UPDATE audit_records SET seq = :s WHERE position = :p"),
                       {"s": after.seq, "p": target.position})
        elif tamper == "edit-decisions":
            db.execute(text("UPDATE audit_decision_sets SET body = replace(body, 'WITHHOLD', 'SHARE') "
                            "WHERE digest = :d"), {"d": target.decisions_digest})
        else:
            db.execute(text("DELETE FROM audit_decision_sets WHERE digest = :d"), {"d": target.decisions_digest})
    engine.dispose()
    result = mash(db_settings, "audit", "verify", "--database-only", check=False)
    assert result.returncode == 1
    named = {"edit": (target.chain, target.seq), "delete": (target.chain, target.seq + 1),
             "reorder": (target.chain, target.seq), "edit-decisions": (first_naming.chain, first_naming.seq),
             "delete-decisions": (first_naming.chain, first_naming.seq)}[tamper]
    assert f"chain {named[0]}, record {named[1]} " in result.stderr, result.stderr
    if tamper.endswith("decisions"):
        assert "decision set" in result.stderr


def test_a_policy_change_takes_effect_at_the_next_batch_and_a_broken_one_is_refused(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    shutil.copyfile(DEFAULT_POLICY, policy)
    sharer = Sharer(CODEC, sessions, PolicySource(policy))
    batches = enriched(sessions, feed(6), tmp_path)
    before = shared_events(sharer.process(batches[:2]))
    policy.write_text(policy.read_text().replace("operation-encompass-to-school", "encompass-to-school"))
    os.utime(policy, ns=(1, 1))
    after = shared_events(sharer.process(batches[2:4]))
    policy.write_text("policy: broken\nrules: [")
    refused = shared_events(sharer.process(batches[4:]))
    assert before[0]["policy_version"] != after[0]["policy_version"]
    assert {e["policy_version"] for e in refused} == {after[0]["policy_version"]}  # the last good policy
    assert sharer.policies.rejected is not None and "not valid YAML" in str(sharer.policies.rejected)
    with sessions() as session:
        versions = [s.record["policy_version"] for s in audit_store.read_chains(session)]
    assert set(versions) == {before[0]["policy_version"], after[0]["policy_version"]}


def test_audit_explain_says_in_plain_english_why_each_role_saw_what_it_saw(
        sessions: sessionmaker[Session], db_settings: Settings, tmp_path: Path) -> None:
    record = police(1, "P-1", None, "2014-01-11", "LS1 1AA", 2) | {"consent": "REFUSED", "risk_grading": "HIGH"}
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY)).process(enriched(sessions, [record], tmp_path))
    event_id = shared_events(out)[0]["event_id"]
    explained = mash(db_settings, "audit", "explain", event_id).stdout
    assert "consent was refused" in explained
    assert "The MASH social worker saw the whole event" in explained
    assert "overridden because: risk of significant harm" in explained
    assert "The education safeguarding lead saw nothing of the event" in explained
    assert "UK GDPR Art 6(1)(e): public task" in explained
    assert mash(db_settings, "audit", "explain", "no-such-event", check=False).returncode == 1


# -- through the real broker -----------------------------------------------------------------------

def publish_police(settings: Settings, tmp_path: Path, records: list[dict[str, Any]]) -> list[str]:
    connector = build_connector("police", tmp_path / "connectors")
    producer = KafkaProducer(**operator_client(settings), acks="all")
    ids = []
    for record in records:
        event = connector.to_event(connector.map(record))
        producer.send(topic_name(inbound("police"), settings), key=event["envelope"]["subject"]["local_id"].encode(),
                      value=CODEC.encode(event, connector.schema))
        ids.append(str(event["envelope"]["event_id"]))
    producer.flush()
    producer.close()
    return ids


def read_all(settings: Settings, name: str) -> list[Any]:
    consumer = KafkaConsumer(**operator_client(settings), enable_auto_commit=False,
                             consumer_timeout_ms=3000)
    topic = topic_name(name, settings)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    messages = list(consumer)
    consumer.close()
    return messages


def test_refused_consent_is_withheld_without_an_override_rule_and_shared_with_its_reason_where_one_allows(
        provisioned: Settings, hub_worker: Any, tmp_path: Path) -> None:
    refused = {"consent": "REFUSED"}
    ids = publish_police(provisioned, tmp_path, [
        police(1, "P-A", None, "2014-01-11", "LS1 1AA", 2) | refused | {"risk_grading": "STANDARD"},
        police(2, "P-B", None, "2012-03-04", "LS2 2BB", 3) | refused | {"risk_grading": "HIGH"},
    ])
    hub_worker()

    def both_shared() -> dict[str, dict[str, Any]] | None:
        events = {e["event_id"]: e for e in (CODEC.decode(m.value)[0] for m in read_all(provisioned, SHARED))}
        return events if set(ids) <= set(events) else None

    events = wait_for(both_shared, what="both events on the shared topic")
    standard, high = views_of(events[ids[0]]), views_of(events[ids[1]])
    assert all(v["outcome"] == "WITHHOLD" and v["fields"] == [] for v in standard.values())
    assert events[ids[0]]["values"] == "{}"  # nothing of it travels on
    assert high["mash_social_worker"]["outcome"] == "SHARE"
    assert "payload.risk_grading" in high["mash_social_worker"]["fields"]
    assert orjson.loads(events[ids[1]]["values"])["payload"]["risk_grading"] == "HIGH"
    assert high["education_safeguarding_lead"]["outcome"] == "WITHHOLD"
    assert high["mash_health_practitioner"]["fields"] == []

    engine = ready_engine(provisioned)
    with session_factory(engine)() as session:
        (entry,) = audit_store.for_event(session, ids[1])
    engine.dispose()
    records = {d["recipient_role"]: d for d in orjson.loads(entry.decisions or "[]")}
    assert "risk of significant harm" in records["mash_social_worker"]["override_reason"]
    assert records["mash_social_worker"]["rule_ids"] == ["high-risk-incident-override"]
    assert records["education_safeguarding_lead"]["override_reason"] is None
    assert "intact" in mash(provisioned, "audit", "verify", "--topic").stdout


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
def test_tampering_with_the_audit_topic_is_named(tamper: str, provisioned: Settings, hub_worker: Any,
                                                 tmp_path: Path) -> None:
    ids = publish_police(provisioned, tmp_path, [police(i, f"P-{i}", None, f"2014-01-{1 + i:02d}", "LS1 1AA", 2)
                                                 for i in range(16)])
    hub_worker()
    wait_for(lambda: len(read_all(provisioned, AUDIT)) >= len(ids), what="the audit records")
    records = sorted(read_all(provisioned, AUDIT), key=lambda m: (m.partition, m.offset))
    values = [m.value for m in records]
    chain_of = [CODEC.decode(v)[0]["chain"] for v in values]
    target = next(i for i in range(1, len(values) - 1) if chain_of[i - 1] == chain_of[i] == chain_of[i + 1])
    if tamper == "edit":
        record = CODEC.decode(values[target])[0]
        body = orjson.loads(record["body"])  # any record kind: the edit must not depend on what it holds
        edited = orjson.dumps({**body, "decided_by": "someone"}, option=orjson.OPT_SORT_KEYS).decode()
        assert edited != record["body"]
        values[target] = CODEC.encode(record | {"body": edited}, "uk.mash.hub.AuditRecord")
    elif tamper == "delete":
        del values[target]
    else:
        values[target], values[target + 1] = values[target + 1], values[target]
    copy = Settings(**{**provisioned.model_dump(), "topic_prefix": provisioned.topic_prefix + "copy."})
    provision(copy.bootstrap_servers, copy)
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    for value in values:  # one partition: the order read is the order written
        producer.send(topic_name(AUDIT, copy), value=value, partition=0)
    producer.flush()
    producer.close()
    seq = CODEC.decode(records[target].value)[0]["seq"]
    result = verify(read_topic(provisioned.bootstrap_servers, topic_name(AUDIT, copy), CODEC,
                                 client=kafka_python_options(copy, OPERATOR)))
    assert result.broken is not None
    assert (result.broken.chain, result.broken.seq) == (chain_of[target], {"edit": seq, "delete": seq + 1,
                                                                           "reorder": seq + 1}[tamper])
    cli = mash(copy, "audit", "verify", "--topic", check=False)
    assert cli.returncode == 1 and f"chain {chain_of[target]}, record" in cli.stderr
