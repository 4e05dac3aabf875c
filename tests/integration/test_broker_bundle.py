"""The compose stack's broker as its container runs it: formatted and started from `mash kafka bundle`
alone (its server.properties, scram.args and cluster.id; here with the pinned jars instead of the
apache/kafka image, which runs the same classes). It is secured, and each service reaches it with
nothing but its own folder of the bundle, as `docker-compose.yml` mounts them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import TopicAuthorizationFailedError

from mash.acl_sync import sync_acls
from mash.broker_bundle import write_bundle
from mash.kafka_acls import SERVICE_PRINCIPALS, grants
from mash.kafka_security import HUB, OPERATOR, kafka_python_options
from mash.local_kafka import free_port, wait_until_ready
from mash.settings import Settings
from mash.topics import inbound, provision, topic_name
from tests.integration.conftest import stop_process


def service_settings(bundle: Path, principal: str, bootstrap: str) -> Settings:
    """A service's settings with only its own folder of the bundle, as its container has them."""
    folder = bundle / principal
    return Settings(bootstrap_servers=bootstrap, kafka_security_protocol="SASL_SSL", kafka_credentials_dir=folder,
                    kafka_ssl_cafile=folder / "ca.pem", topic_prefix="compose.", app_id="compose")


@pytest.fixture
def bundled(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    port = free_port()
    bundle = tmp_path / "bundle"
    write_bundle(bundle, host="localhost", port=port, controller_port=free_port(), mounted_at=bundle / "broker",
                 data_dir=tmp_path / "data")
    broker, jars = bundle / "broker", Settings().kafka_jars_dir
    cluster_id = (broker / "cluster.id").read_text().strip()
    formatted = subprocess.run(
        ["java", "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format", "-t", cluster_id,
         "-c", str(broker / "server.properties"), "--ignore-formatted", f"@{broker / 'scram.args'}"],
        capture_output=True, text=True, timeout=120)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    with (tmp_path / "broker.out").open("wb") as out:
        proc = subprocess.Popen(["java", "-Xms256m", "-Xmx512m", "-cp", f"{jars}/*", "kafka.Kafka",
                                 str(broker / "server.properties")], stdout=out, stderr=subprocess.STDOUT)
    bootstrap = f"localhost:{port}"
    try:
        operator = service_settings(bundle, OPERATOR, bootstrap)
        wait_until_ready(bootstrap, 90, [proc], client=kafka_python_options(operator, OPERATOR))
        provision(bootstrap, operator)
        sync_acls(bootstrap, operator)
        yield bundle, bootstrap
    finally:
        stop_process(proc)


def send(settings: Settings, principal: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", max_block_ms=15_000,
                             **kafka_python_options(settings, principal))
    try:
        producer.send(topic_name(topic, settings), key=b"k", value=b"v").get(timeout=15)
    finally:
        producer.close(timeout=5)


def test_a_broker_started_from_the_bundle_lets_each_service_in_with_its_own_folder_and_no_further(
    bundled: tuple[Path, str],
) -> None:
    bundle, bootstrap = bundled
    hub = service_settings(bundle, HUB, bootstrap)
    written = next(g.name for g in grants(hub) if g.principal == HUB and g.operation == "WRITE"
                   and g.resource == "TOPIC" and g.pattern == "LITERAL")
    send(hub, HUB, written.removeprefix(hub.topic_prefix))
    with pytest.raises(TopicAuthorizationFailedError):
        send(hub, HUB, inbound("police"))  # a connector's topic: the hub may only read it

    # A service's folder holds its own password and the CA, nothing of any other principal's.
    for principal in (*SERVICE_PRINCIPALS, OPERATOR):
        assert sorted(p.name for p in (bundle / principal).iterdir()) == sorted([principal, "ca.pem"])
        assert (bundle / principal / principal).stat().st_mode & 0o077 == 0

