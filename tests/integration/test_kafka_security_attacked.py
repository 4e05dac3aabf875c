"""Attacks on the secured bus, against a real broker (TLS, SCRAM-SHA-512, the declared ACLs): what a
service principal can do beyond its declaration, what `sync_acls` keeps or deletes, where the passwords
end up. A broker of its own for this module (the pattern of test_kafka_security's `secured`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    NewPartitions,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    UserScramCredentialUpsertion,
)
from kafka.errors import KafkaError, UnknownTopicOrPartitionError
from kafka.structs import OffsetAndMetadata
from pydantic import SecretStr

from mash.acl_sync import sync_acls
from mash.kafka_acls import SERVICE_PRINCIPALS, grants
from mash.kafka_security import HUB, OPERATOR, connector, credentials_dir, kafka_python_options
from mash.local_kafka import AUTHORIZER_LOG, start_broker
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import CATALOGUE, provision, topic_name
from tests.support.secured_kafka import Secured

TIMEOUT_S = 20.0


def commit(secured: Secured, principal: str, group: str, topic: str) -> None:
    consumer = KafkaConsumer(**secured.client(principal), group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, "", -1)})
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    state = tmp_path_factory.mktemp("attacked")
    broker = start_broker(state / "kafka", Settings().kafka_jars_dir, secure=True)
    try:
        settings = Settings(bootstrap_servers=broker.bootstrap, state_dir=state, kafka_security_protocol="SASL_SSL",
                            app_id="sec", topic_prefix="sec.", database_url=SecretStr(f"sqlite:///{state / 'mash.db'}"))
        provision(broker.bootstrap, settings)
        sync_acls(broker.bootstrap, settings)
        it = Secured(settings, broker)
        readable = {(g.principal, g.name) for g in grants(settings) if g.operation == "READ" and g.resource == "TOPIC"}
        for principal, group in it.groups().items():  # every service's group exists, with an offset in it
            topic = min(t for p, t in readable if p == principal)
            commit(it, principal, group, topic)
        yield it
    finally:
        broker.stop()


def refused(action: Callable[[], Any]) -> bool:
    """The broker refused `action`: an authorization error raised, or reported in the result."""
    try:
        result = action()
    except KafkaError as exc:  # a topic it may not even describe is hidden from it: unknown
        return "Authorization" in type(exc).__name__ or isinstance(exc, UnknownTopicOrPartitionError)
    return "authoriz" in repr(result).lower()


@pytest.mark.parametrize("principal", SERVICE_PRINCIPALS)
def test_no_service_can_administer_topics_acls_or_credentials(secured: Secured, principal: str) -> None:
    s = secured.settings
    own = topic_name(CATALOGUE[0].name, s)
    admin = secured.admin(principal)
    try:
        assert refused(lambda: admin.create_topics([NewTopic("sec.mash.rogue.v1", 1, 1)]))
        assert refused(lambda: admin.delete_topics([own]))
        assert refused(lambda: admin.delete_topics([topic_name("mash.requests.education.v1", s)]))
        assert refused(lambda: admin.create_partitions({own: NewPartitions(9)}))
        assert refused(lambda: admin.delete_records({TopicPartition(own, 0): 1}))
        grab = ACL(f"User:{principal}", "*", ACLOperation.ALL, ACLPermissionType.ALLOW,
                   ResourcePattern(ResourceType.TOPIC, "", ACLResourcePatternType.PREFIXED))
        assert refused(lambda: admin.create_acls([grab]))
        everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY))
        assert refused(lambda: admin.describe_acls(everything))
        assert refused(lambda: admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(principal, "SCRAM-SHA-512", "z" * 32)]))
    finally:
        admin.close()
    with pytest.raises(KafkaError):
        sync_acls(s.bootstrap_servers, s.model_copy(update={"kafka_username": principal,
                  "kafka_password": SecretStr((credentials_dir(s) / principal).read_text())}))
    # closed whatever happens: a client left open retries a stopped broker for the rest of the session, and
    # its reconnect jitter moves the global random state under other tests' Hypothesis draws
    producer = KafkaProducer(**secured.client(principal), transactional_id=f"{principal}-tx", max_block_ms=5000)
    try:
        assert refused(producer.init_transactions)
    finally:
        producer.close(timeout=5)


@pytest.mark.parametrize("principal", SERVICE_PRINCIPALS)
def test_no_service_can_see_or_move_another_services_consumer_group(secured: Secured, principal: str) -> None:
    groups = secured.groups()
    others = [group for who, group in groups.items() if who != principal]
    admin = secured.admin(principal)
    try:
        assert {group["group_id"] for group in admin.list_groups()} <= {groups.get(principal)}
        for group in others:
            assert refused(lambda: admin.list_group_offsets({group: None})), group  # noqa: B023
            assert refused(lambda: admin.describe_groups([group])), group  # noqa: B023
            assert refused(lambda: admin.delete_groups([group])), group  # noqa: B023
            skip = {TopicPartition(topic_name(CATALOGUE[0].name, secured.settings), 0):
                    OffsetAndMetadata(10**9, "", -1)}
            assert refused(lambda: admin.alter_group_offsets(group, skip)), group  # noqa: B023
        if principal in groups:  # its own group: it may commit, not delete the group
            assert refused(lambda: admin.delete_groups([groups[principal]]))
    finally:
        admin.close()


def test_no_service_can_alter_a_topics_configuration(secured: Secured) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType

    topic = topic_name("mash.decisions.v1", secured.settings)
    for principal in SERVICE_PRINCIPALS:
        admin = secured.admin(principal)
        try:
            resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1"})
            with contextlib.suppress(KafkaError):
                admin.alter_configs([resource], raise_on_unknown=False)
        finally:
            admin.close()
    operator = secured.admin(OPERATOR)
    try:
        described = operator.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        operator.close()
    assert "'retention.ms': {'value': '1'," not in repr(described)


def test_sync_acls_deletes_a_declared_principals_broader_prefixed_grant(secured: Secured) -> None:
    broad = ACL(f"User:{HUB}", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                ResourcePattern(ResourceType.TOPIC, "sec.", ACLResourcePatternType.PREFIXED))
    admin = secured.admin(OPERATOR)
    try:
        admin.create_acls([broad])
        changes = sync_acls(secured.settings.bootstrap_servers, secured.settings)
        assert [(g.principal, g.name, g.pattern) for g in changes.deleted] == [(HUB, "sec.", "PREFIXED")]
        assert not changes.created
    finally:
        admin.close()


def test_sync_acls_of_another_deployment_leaves_this_ones_grants_alone(secured: Secured) -> None:
    other = secured.settings.model_copy(update={"topic_prefix": "other.", "app_id": "other"})
    changes = sync_acls(secured.settings.bootstrap_servers, other, dry_run=True)
    assert not [g for g in changes.deleted if g.name.startswith("sec.")]


def test_sync_acls_restores_a_declared_grant_narrowed_to_one_host(secured: Secured) -> None:
    who, topic = connector("social_care"), topic_name("mash.inbound.social_care.v1", secured.settings)

    def acl(host: str) -> ACL:
        return ACL(f"User:{who}", host, ACLOperation.WRITE, ACLPermissionType.ALLOW,
                   ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))

    admin = secured.admin(OPERATOR)
    try:
        admin.delete_acls([acl("*")])
        admin.create_acls([acl("10.9.9.9")])
        changes = sync_acls(secured.settings.bootstrap_servers, secured.settings, dry_run=True)
        assert (who, topic, "WRITE") in {(g.principal, g.name, g.operation) for g in changes.created}
    finally:
        admin.delete_acls([acl("10.9.9.9")])
        admin.create_acls([acl("*")])
        admin.close()


def test_sync_acls_does_not_let_a_wildcard_grant_widen_the_declared_principals(secured: Secured) -> None:
    topic = topic_name("mash.enriched.v1", secured.settings)
    wildcard = ACL("User:*", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                   ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
    admin = secured.admin(OPERATOR)
    try:
        admin.create_acls([wildcard])
        changes = sync_acls(secured.settings.bootstrap_servers, secured.settings, dry_run=True)
        assert changes.deleted, "the wildcard grant is neither deleted nor reported"
    finally:
        admin.delete_acls([wildcard])
        admin.close()


def test_sync_acls_is_idempotent(secured: Secured) -> None:
    first = sync_acls(secured.settings.bootstrap_servers, secured.settings)
    again = sync_acls(secured.settings.bootstrap_servers, secured.settings)
    assert (again.created, again.deleted) == ([], []), first


def passwords(secured: Secured) -> dict[str, str]:
    return {p.name: p.read_text() for p in credentials_dir(secured.settings).iterdir() if not p.name.startswith(".")}


def test_no_password_is_on_the_brokers_command_line_environment_or_logs(secured: Secured) -> None:
    data = secured.broker.data_dir
    exposed = [Path(f"/proc/{secured.broker.pid}/cmdline"), Path(f"/proc/{secured.broker.pid}/environ"),
               *(data / name for name in ("broker.log", "broker.out", AUTHORIZER_LOG, "log4j.properties"))]
    texts = {str(p): p.read_bytes().decode(errors="replace") for p in exposed if p.exists()}
    for principal, password in passwords(secured).items():
        for where, text in texts.items():
            assert password not in text, (principal, where)


def test_the_brokers_data_is_not_readable_by_other_local_users(secured: Secured) -> None:
    data = secured.broker.data_dir
    reachable = data.stat().st_mode & 0o005 == 0o005
    readable = [p for p in (data / "log").rglob("*.log") if p.stat().st_mode & 0o004]
    assert not (reachable and readable), readable[:3]


def test_the_credentials_command_rotates_a_unicode_password_and_never_prints_it(secured: Secured) -> None:
    s = secured.settings
    who = connector("health")
    new = "пароль-ünïcødé-🔑-" + "x" * 24
    env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": s.bootstrap_servers, "MASH_STATE_DIR": str(s.state_dir),
           "MASH_TOPIC_PREFIX": s.topic_prefix, "MASH_APP_ID": s.app_id, "MASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "PYTHONIOENCODING": "utf-8"}
    run = subprocess.run([sys.executable, "-m", "mash.cli", "kafka", "credentials", who], input=new + "\n", env=env,
                         cwd=PROJECT_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert new not in run.stdout + run.stderr
    as_new = s.model_copy(update={"kafka_username": who, "kafka_password": SecretStr(new)})
    producer = KafkaProducer(bootstrap_servers=s.bootstrap_servers, max_block_ms=int(TIMEOUT_S * 1000),
                             **kafka_python_options(as_new, who))
    try:
        producer.send(topic_name("mash.inbound.health.v1", s), b"v", partition=0).get(timeout=TIMEOUT_S)
    finally:
        producer.close(timeout=5)
    generate = subprocess.run([sys.executable, "-m", "mash.cli", "kafka", "credentials", who, "--generate"], env=env,
                              cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert generate.returncode == 0, generate.stderr[-2000:]
    assert passwords(secured)[who] not in generate.stdout + generate.stderr


def test_acls_apply_with_a_wrong_operator_password_fails_clearly_and_does_not_echo_it(secured: Secured) -> None:
    s = secured.settings
    wrong = "wrong-MARKER-" + "y" * 24
    env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": s.bootstrap_servers, "MASH_STATE_DIR": str(s.state_dir),
           "MASH_TOPIC_PREFIX": s.topic_prefix, "MASH_APP_ID": s.app_id, "MASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
           "MASH_KAFKA_USERNAME": OPERATOR, "MASH_KAFKA_PASSWORD": wrong}
    run = subprocess.run([sys.executable, "-m", "mash.cli", "kafka", "acls", "--apply"], env=env, cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=80)
    assert wrong not in run.stdout + run.stderr
    assert run.returncode == 2, run.stderr[-2000:]
    assert "MASH_KAFKA_PASSWORD" in run.stderr and "Traceback" not in run.stderr
