"""The bus locked down, against a real broker with security on: TLS, SCRAM-SHA-512 per service, and the
declared ACLs (`mash.kafka_acls`) enforced. Each service can do its work; every other read and write
is refused and the broker logs it; plaintext, a wrong password and an untrusted certificate are refused.

A broker of its own for this module, with one deployment's ACLs applied; the session's broker is
secured too (tests/support/bus.py)."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr
from sqlalchemy import func, select

from mash.acl_sync import sync_acls
from mash.db import db_upgrade, engine_for
from mash.kafka_acls import SERVICE_PRINCIPALS, grants
from mash.kafka_security import HUB, OPERATOR, connector
from mash.local_kafka import start_broker
from mash.models import EventOutcomeRecord
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import CATALOGUE, provision, topic_name
from tests.support.secured_kafka import Secured

TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    state = tmp_path_factory.mktemp("secured")
    broker = start_broker(state / "kafka", Settings().kafka_jars_dir, secure=True)
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=state, kafka_security_protocol="SASL_SSL",
                            app_id="sec", topic_prefix="sec.", database_url=SecretStr(f"sqlite:///{state / 'mash.db'}"))
        provision(broker.bootstrap, settings)
        sync_acls(broker.bootstrap, settings)
        for spec in CATALOGUE:  # something to read on every topic, so that a refused read is seen to be one
            write(Secured(settings, broker), OPERATOR, topic_name(spec.name, settings))
        yield Secured(settings, broker)
    finally:
        broker.stop()


def write(secured: Secured, principal: str, topic: str) -> None:
    producer = KafkaProducer(**secured.client(principal), acks="all", max_block_ms=int(TIMEOUT_S * 1000))
    try:
        producer.send(topic, key=b"k", value=b"v", partition=0).get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=5)


def read(secured: Secured, principal: str, topic: str, group: str | None = None,
         wait_s: float = TIMEOUT_S) -> list[Any]:
    """The records of the topic's first partition (every topic holds one: `secured` wrote it) and, with a
    group, commit there as that group. A principal that may not even see the topic gets nothing: the
    client is told it is not authorized and never fetches."""
    consumer = KafkaConsumer(**secured.client(principal), group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + wait_s
        records: list[Any] = []
        while not records and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=200).get(tp, [])
        if group:
            consumer.commit()
        return records
    finally:
        consumer.close()


def read_all(secured: Secured, principal: str, topics: list[str], wait_s: float = 2.0) -> list[Any]:
    """What one consumer of `principal` gets from the first partition of each of `topics` in `wait_s`; the
    client raises for some refused topics and is silently given nothing for those it may not even see."""
    consumer = KafkaConsumer(**secured.client(principal), enable_auto_commit=False, auto_offset_reset="earliest")
    got: list[Any] = []
    try:
        partitions = [TopicPartition(topic, 0) for topic in topics]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(TopicAuthorizationFailedError):
                got += [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
        return got
    finally:
        consumer.close()


def test_each_service_can_do_its_work(secured: Secured) -> None:
    declared = grants(secured.settings)
    groups = {g.principal: g.name for g in declared if g.resource == "GROUP"}
    for grant in declared:
        if grant.resource != "TOPIC" or grant.pattern != "LITERAL":
            continue
        if grant.operation == "WRITE":
            write(secured, grant.principal, grant.name)
        elif grant.operation == "READ":
            assert read(secured, grant.principal, grant.name, groups[grant.principal]), grant


def test_the_triage_app_creates_a_further_agencys_request_topic_and_nothing_else(secured: Secured) -> None:
    from mash.topics import request_topic_spec

    created = provision(secured.settings.bootstrap_servers, secured.settings,
                        specs=(request_topic_spec("youth_justice"),), service="triage-app")
    assert created == ["sec.mash.requests.youth_justice.v1"]
    write(secured, "triage-app", "sec.mash.requests.youth_justice.v1")
    with pytest.raises(KafkaError):
        provision(secured.settings.bootstrap_servers, secured.settings, timeout_s=0,
                  specs=(request_topic_spec("youth_justice"),), service=connector("police"))


def test_every_forbidden_read_and_write_is_refused_and_logged(secured: Secured) -> None:
    allowed = {(g.principal, g.name, g.operation) for g in grants(secured.settings) if g.resource == "TOPIC"}
    refused: list[tuple[str, str, str]] = []
    for principal in SERVICE_PRINCIPALS:
        topics = [topic_name(spec.name, secured.settings) for spec in CATALOGUE]
        unwritable = [t for t in topics if (principal, t, "WRITE") not in allowed
                      and not (principal == "triage-app" and t.startswith("sec.mash.requests."))]
        unreadable = [t for t in topics if (principal, t, "READ") not in allowed]
        # not idempotent: an idempotent producer stops for good at its first refusal, and sends nothing more
        producer = KafkaProducer(**secured.client(principal), acks="all", enable_idempotence=False,
                                 max_block_ms=int(TIMEOUT_S * 1000))
        try:
            for topic in unwritable:
                with pytest.raises(TopicAuthorizationFailedError):
                    producer.send(topic, key=b"k", value=b"v", partition=0).get(timeout=TIMEOUT_S)
        finally:
            producer.close(timeout=5)
        assert not read_all(secured, principal, unreadable), principal  # every topic holds a record
        refused += [(principal, "WRITE", t) for t in unwritable] + [(principal, "READ", t) for t in unreadable]
    assert len(refused) > 150  # six principals, eighteen topics: almost everything is someone else's
    denied = [line for line in secured.authorizer_log().splitlines() if " is Denied operation = " in line]
    for principal, operation, topic in refused:
        # a topic it may not even see is refused at DESCRIBE (the metadata), before any fetch or produce
        operations = (operation, "DESCRIBE")
        assert any(f"User:{principal} is Denied operation = {op}" in line and f"Topic:LITERAL:{topic} " in line
                   for line in denied for op in operations), (principal, operation, topic)


def test_a_service_cannot_commit_in_another_services_group(secured: Secured) -> None:
    with pytest.raises(GroupAuthorizationFailedError):
        read(secured, connector("police"), topic_name("mash.inbound.police.v1", secured.settings), "sec.enrichment")


def refused(options: dict[str, Any]) -> None:
    """A client with `options` never gets past connecting."""
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(**options, bootstrap_timeout_ms=3000)
    with warnings.catch_warnings():  # kafka-python leaves a refused connection's socket to the collector
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def test_plaintext_is_refused(secured: Secured) -> None:
    refused({"bootstrap_servers": secured.settings.bootstrap_servers, "request_timeout_ms": 3000})


def test_a_wrong_password_is_refused_and_logged(secured: Secured) -> None:
    refused({**secured.client(HUB), "sasl_plain_password": "not-the-password"})
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in secured.authorizer_log()


def test_a_broker_certificate_from_an_unknown_ca_is_refused(secured: Secured) -> None:
    refused({k: v for k, v in secured.client(HUB).items() if k != "ssl_cafile"})  # the system's trust store


def test_the_controllers_accept_no_client_without_the_brokers_certificate(secured: Secured) -> None:
    config = (secured.broker.data_dir / "server.properties").read_text()
    port = int(config.split("CONTROLLER://127.0.0.1:")[1].split()[0].split(",")[0])
    context = ssl.create_default_context(cafile=str(secured.broker.data_dir / "tls" / "ca.pem"))
    with (socket.create_connection(("127.0.0.1", port), timeout=5) as raw, pytest.raises((ssl.SSLError, OSError)),
          context.wrap_socket(raw, server_hostname="127.0.0.1") as tls):
        tls.sendall(b"\x00\x00\x00\x00")
        if not tls.recv(1):  # TLS 1.3 reports a refused client certificate on the first read
            raise OSError("closed by the controller")


def test_secrets_are_owner_only_files_never_on_a_command_line(secured: Secured) -> None:
    data = secured.broker.data_dir
    for path in [*(data / "credentials").iterdir(), data / "tls" / "broker-keystore.pem", data / "server.properties"]:
        assert path.stat().st_mode & 0o077 == 0, path
    password = (data / "credentials" / OPERATOR).read_text()
    assert password not in Path(f"/proc/{secured.broker.pid}/cmdline").read_bytes().decode(errors="replace")


def test_applying_the_acls_removes_what_the_declaration_took_away_and_leaves_others_alone(secured: Secured) -> None:
    admin = KafkaAdminClient(**secured.client(OPERATOR))
    try:
        extra = [ACL(f"User:{who}", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                     ResourcePattern(ResourceType.TOPIC, topic_name("mash.inbound.health.v1", secured.settings),
                                     ACLResourcePatternType.LITERAL))
                 for who in (connector("police"), "someone-elses-service")]
        admin.create_acls(extra)
        changes = sync_acls(secured.settings.bootstrap_servers, secured.settings)
        assert [(g.principal, g.operation) for g in changes.deleted] == [(connector("police"), "READ")]
        assert not changes.created
        again = sync_acls(secured.settings.bootstrap_servers, secured.settings)
        assert (again.created, again.deleted) == ([], [])
        assert not read_all(secured, connector("police"), [topic_name("mash.inbound.health.v1", secured.settings)])
    finally:
        admin.delete_acls([extra[1]])
        admin.close()


def test_the_hub_and_a_connector_run_the_samples_as_their_own_principals(secured: Secured, tmp_path: Path) -> None:
    settings = secured.settings
    db_upgrade(settings)
    env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "MASH_TOPIC_PREFIX": settings.topic_prefix, "MASH_APP_ID": settings.app_id,
           "MASH_STATE_DIR": str(settings.state_dir),
           "MASH_DATABASE_URL": settings.sqlalchemy_url(), "MASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    run = subprocess.run([sys.executable, "-m", "mash.cli", "connector", "run", "police", "--sample"], env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    produced = int(run.stderr.rsplit("produced ", 1)[1].split(",")[0])
    with (tmp_path / "hub.log").open("wb") as log:
        hub = subprocess.Popen([sys.executable, "-m", "mash.cli", "hub", "worker"], env=env, cwd=PROJECT_ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    engine = engine_for(settings)
    try:
        deadline, outcomes = time.monotonic() + 120, 0
        while time.monotonic() < deadline and outcomes < produced and hub.poll() is None:
            with engine.connect() as db:
                outcomes = db.scalar(select(func.count()).select_from(EventOutcomeRecord)) or 0
            time.sleep(0.5)
        assert outcomes == produced, (tmp_path / "hub.log").read_text()[-3000:]
    finally:
        hub.terminate()
        hub.wait(timeout=60)
        engine.dispose()


def test_a_services_password_is_rotated_on_the_running_broker(secured: Secured) -> None:
    from mash.scram_credentials import CredentialError, rotate_embedded, set_password

    who = connector("health")
    old = secured.client(who)
    rotate_embedded(secured.settings.bootstrap_servers, secured.settings, who)
    write(secured, who, topic_name("mash.inbound.health.v1", secured.settings))  # as its processes next connect
    refused(old)
    with pytest.raises(CredentialError, match="at least 24"):
        set_password(secured.settings.bootstrap_servers, secured.settings, who, "short")
    with pytest.raises(CredentialError, match="not a service principal"):
        set_password(secured.settings.bootstrap_servers, secured.settings, OPERATOR, "x" * 30)


def test_a_connection_made_before_a_rotation_carries_on_and_a_new_one_needs_the_new_password(
        secured: Secured) -> None:
    """The runbook's rotation window: between setting the new password and restarting a service's
    processes, a process already connected keeps working on its authenticated connection (the bus
    does not stop); only a new connection is refused with the old password."""
    from mash.scram_credentials import rotate_embedded

    who = connector("social_care")
    topic = topic_name("mash.inbound.social_care.v1", secured.settings)
    before = secured.client(who)
    producer = KafkaProducer(**before, acks="all", max_block_ms=int(TIMEOUT_S * 1000))
    try:
        producer.send(topic, key=b"k", value=b"before the rotation", partition=0).get(timeout=TIMEOUT_S)
        rotate_embedded(secured.settings.bootstrap_servers, secured.settings, who)
        assert secured.client(who)["sasl_plain_password"] != before["sasl_plain_password"]
        producer.send(topic, key=b"k", value=b"after the rotation", partition=0).get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=5)
    values = [r.value for r in read(secured, OPERATOR, topic)]
    assert values[-2:] == [b"before the rotation", b"after the rotation"]
    refused(before)
    write(secured, who, topic)  # with the new password, as its processes next connect
