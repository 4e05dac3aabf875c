"""The embedded Apache Kafka broker (KRaft, single node) for the demo and the tests, and a cluster
of several such nodes on loopback for the fault tests.

The jars come from Maven Central through `infra/kafka/pom.xml`; the broker runs from them on a
free loopback port with its data in a directory of its own. Nothing here is used in production,
where `MASH_BOOTSTRAP_SERVERS` names a real cluster.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mash.kafka_acls import SERVICE_PRINCIPALS, SUPER_USERS
from mash.kafka_security import BROKER, OPERATOR, secured, write_passwords
from mash.local_tls import TlsFiles, make_tls
from mash.settings import PROJECT_ROOT, Settings

BROKER_CN = "mash-embedded-broker"  # the broker certificate's subject: the controllers' only client
POM = PROJECT_ROOT / "infra" / "kafka" / "pom.xml"
START_TIMEOUT_S = 90.0
SCRAM_ARGFILE = "scram.args"  # the storage tool's credentials, removed as soon as it has run
AUTHORIZER_LOG = "authorizer.log"  # every refused operation and failed log-in, one line each


class KafkaSetupError(RuntimeError):
    """The embedded broker could not be fetched or started; the message says what to do."""


def ensure_jars(jars_dir: Path) -> Path:
    """Fetch the broker's jars with Maven unless a previous run already did."""
    if any(jars_dir.glob("kafka_2.13-*.jar")):
        return jars_dir
    if shutil.which("mvn") is None:
        raise KafkaSetupError("Maven (mvn) is needed to fetch Kafka's jars: apt-get install maven")
    print(f"mash: fetching Apache Kafka's jars from Maven Central into {jars_dir} ...", flush=True)
    started = time.monotonic()
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "package", f"-DoutputDirectory={jars_dir.resolve()}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not any(jars_dir.glob("kafka_2.13-*.jar")):
        raise KafkaSetupError(
            "fetching Kafka's jars failed; run `mvn -B -f infra/kafka/pom.xml package` to see "
            f"why.\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    count = len(list(jars_dir.glob("*.jar")))
    print(f"mash: {count} jars fetched in {time.monotonic() - started:.0f} s", flush=True)
    return jars_dir


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Node:
    """One KRaft node (broker and controller in one process) and its ports: on loopback for the
    embedded stack; `host` (the name others reach it by) and `bind` (what it listens on) for a broker
    in a container (`mash.broker_bundle`)."""

    node_id: int
    port: int
    controller_port: int
    host: str = "127.0.0.1"
    bind: str = "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BrokerSecurity:
    """A secured embedded broker: TLS everywhere, SCRAM-SHA-512 for clients, ACLs enforced.

    Clients connect to SASL_SSL (TLS and a SCRAM principal); the brokers among themselves too, as
    `broker`. The controller listener takes TLS with a client certificate only (the broker's own),
    so no client can reach the controllers. Both `broker` and `operator` are super users; every
    other principal has only what `mash.kafka_acls` grants it."""

    tls: TlsFiles
    passwords: Mapping[str, str] = field(repr=False)  # principal -> SCRAM password; never in a repr or traceback

    def properties(self) -> list[str]:
        jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{BROKER}" password="{self.passwords[BROKER]}";')
        return [
            "sasl.enabled.mechanisms=SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={self.tls.broker_keystore}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={self.tls.ca_cert}",
            "listener.name.controller.ssl.client.auth=required",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=" + ";".join([*(f"User:{u}" for u in SUPER_USERS), f"User:CN={BROKER_CN}"]),
            "allow.everyone.if.no.acl.found=false",
        ]


def server_properties(data_dir: Path, node: Node, voters: Sequence[Node], min_insync_replicas: int = 1,
                       security: BrokerSecurity | None = None) -> str:
    """A node's configuration. Every topic (the hub's, the group offsets, transaction state) is
    replicated to every voter and acknowledged with `acks=all` once `min_insync_replicas` hold it."""
    replication = len(voters)
    listener, controller = ("SASL_SSL", "SSL") if security else ("PLAINTEXT", "PLAINTEXT")
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            "controller.quorum.voters=" + ",".join(f"{v.node_id}@{v.host}:{v.controller_port}" for v in voters),
            f"listeners={listener}://{node.bind}:{node.port},CONTROLLER://{node.bind}:{node.controller_port}",
            f"advertised.listeners={listener}://{node.address}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map={listener}:{listener},CONTROLLER:{controller}",
            *(security.properties() if security else ()),
            f"log.dirs={data_dir / 'log'}",
            "num.partitions=1",
            f"default.replication.factor={replication}",
            f"min.insync.replicas={min_insync_replicas}",
            f"offsets.topic.replication.factor={replication}",
            "offsets.topic.num.partitions=4",
            f"transaction.state.log.replication.factor={replication}",
            f"transaction.state.log.min.isr={min_insync_replicas}",
            "group.initial.rebalance.delay.ms=0",
            # Topics come from the catalogue (`mash topics provision`) or, for Faust's own
            # changelogs, from its admin calls; a typo in a topic name must not create one.
            "auto.create.topics.enable=false",
            "",
        ]
    )


_LOG4J = """log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.appender.authorizer=org.apache.log4j.FileAppender
log4j.appender.authorizer.File={authorizer}
log4j.appender.authorizer.layout=org.apache.log4j.PatternLayout
log4j.appender.authorizer.layout.ConversionPattern=[%d] %p %m%n
log4j.logger.kafka.authorizer.logger=INFO, authorizer
log4j.additivity.kafka.authorizer.logger=false
log4j.logger.org.apache.kafka.common.network.Selector=INFO, authorizer
"""


@dataclass
class BrokerProcess:
    """A running embedded broker: where it answers, its process and its files."""

    bootstrap: str
    pid: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None  # None when started by another command
    security: BrokerSecurity | None = None

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop cleanly (SIGTERM lets Kafka close its logs), then force if it hangs."""
        if self.process is None:
            _terminate(self.pid, timeout_s)
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """kill -9: no clean shutdown, nothing flushed (a fault test's crashed broker)."""
        assert self.process is not None, "only a broker this process started can be killed"
        self.process.kill()
        self.process.wait()


@dataclass
class Cluster:
    """Several KRaft nodes on loopback, each a broker and a controller; `brokers[i]` is node i + 1."""

    brokers: list[BrokerProcess]

    @property
    def bootstrap(self) -> str:
        """Every node's address: clients find the others from whichever answers."""
        return ",".join(broker.bootstrap for broker in self.brokers)

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()


def _terminate(pid: int, timeout_s: float) -> None:
    """Stop a broker this process did not start (recorded by `mash kafka start`)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url. Like Kafka's own, never starting with '-',
    which the storage tool's argument parser would take for an option (1 start in 64 failed)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start_broker(data_dir: Path, jars_dir: Path, secure: bool = False) -> BrokerProcess:
    """Format KRaft storage in `data_dir`, start the broker and wait until it answers.

    `secure`: TLS and SCRAM with ACLs enforced (`BrokerSecurity`); a throwaway CA under
    `data_dir/tls` and one password per principal under `data_dir/credentials`, made afresh."""
    node = Node(1, free_port(), free_port())
    security = _make_security(data_dir) if secure else None
    _prepare(data_dir, jars_dir, node, [node], new_cluster_id(), security=security)
    return _launch(data_dir, jars_dir, node.address, security)


def _make_security(data_dir: Path) -> BrokerSecurity:
    data_dir.mkdir(parents=True, exist_ok=True)
    return BrokerSecurity(make_tls(data_dir / "tls", BROKER_CN),
                          write_passwords(data_dir / "credentials", (*SUPER_USERS, *SERVICE_PRINCIPALS)))


def start_cluster(data_dir: Path, jars_dir: Path, brokers: int = 3, min_insync_replicas: int = 2,
                  secure: bool = False) -> Cluster:
    """`brokers` nodes (each a broker and a controller voter, data under `data_dir/node-<id>`), every
    topic replicated to all of them and written once `min_insync_replicas` have it; waits until
    every node is a live broker. With 3 and 2 the cluster loses nothing when one node dies.

    `secure`: as `start_broker`'s, one CA, certificate and set of passwords for every node, under
    `data_dir/tls` and `data_dir/credentials`."""
    nodes = {data_dir / f"node-{n}": Node(n, free_port(), free_port()) for n in range(1, brokers + 1)}
    cluster_id = new_cluster_id()
    security = _make_security(data_dir) if secure else None
    for node_dir, node in nodes.items():
        _prepare(node_dir, jars_dir, node, list(nodes.values()), cluster_id, min_insync_replicas, security)
    cluster = Cluster([])
    try:
        # All at once: no node is ready until a majority of the controllers have elected a leader.
        procs = []
        for node_dir, node in nodes.items():
            procs.append(_spawn(node_dir, jars_dir))
            cluster.brokers.append(BrokerProcess(node.address, procs[-1].pid, node_dir, procs[-1], security=security))
        wait_until_ready(cluster.bootstrap, START_TIMEOUT_S, procs, brokers=brokers,
                         client=operator_options(cluster.brokers[0]))
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _prepare(data_dir: Path, jars_dir: Path, node: Node, voters: Sequence[Node], cluster_id: str,
             min_insync_replicas: int = 1, security: BrokerSecurity | None = None) -> None:
    """Write a node's configuration in `data_dir` and format its KRaft storage as part of `cluster_id`."""
    if shutil.which("java") is None:
        raise KafkaSetupError("Java 17 is needed to run Kafka: apt-get install openjdk-17-jre")
    ensure_jars(jars_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    # Owner only: the topic logs hold every event, and the metadata log the principals' SCRAM credentials;
    # no other local user may read around the ACLs on disk.
    data_dir.chmod(0o700)
    config = data_dir / "server.properties"
    config.unlink(missing_ok=True)  # written afresh, owner-only: it holds the broker's own password
    config.touch(mode=0o600)
    config.write_text(server_properties(data_dir, node, voters, min_insync_replicas, security))
    (data_dir / "log4j.properties").write_text(_LOG4J.format(path=data_dir / "broker.log",
                                                             authorizer=data_dir / AUTHORIZER_LOG))
    # No --standalone: the voters are named in the configuration (controller.quorum.voters).
    fmt = subprocess.run(
        [*_java(data_dir), "-cp", f"{jars_dir}/*", "kafka.tools.StorageTool", "format", "-t", cluster_id,
         "-c", str(config), "--ignore-formatted", *_scram_arguments(data_dir, security)],
        capture_output=True,
        text=True,
    )
    (data_dir / SCRAM_ARGFILE).unlink(missing_ok=True)  # the credentials are in the metadata log now
    if fmt.returncode != 0:
        raise KafkaSetupError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")


def _scram_arguments(data_dir: Path, security: BrokerSecurity | None) -> list[str]:
    """The principals' SCRAM credentials for the storage tool, in an argument file (`@file`, mode 0600,
    one argument a line, read by the tool's argument parser) so that no password is on a command line
    another local user could read."""
    if security is None:
        return []
    argfile = data_dir / SCRAM_ARGFILE
    argfile.unlink(missing_ok=True)
    fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(scram_lines(security.passwords))
    return [f"@{argfile}"]


SCRAM_ITERATIONS = 8192  # Kafka's minimum for SCRAM-SHA-512 is 4096


def scram_lines(passwords: Mapping[str, str], salted: bool = False) -> str:
    """The storage tool's `--add-scram` arguments for every principal, one argument a line.

    `salted`: each credential as the broker stores it (a random salt and the salted password, RFC 5802's
    Hi()), never the password itself, for a file that outlives the formatting."""
    lines = []
    for principal, password in sorted(passwords.items()):
        if salted:
            salt = os.urandom(32)
            hashed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
            credential = (f'name={principal},salt="{base64.b64encode(salt).decode()}",'
                          f'saltedpassword="{base64.b64encode(hashed).decode()}",iterations={SCRAM_ITERATIONS}')
        else:
            credential = f"name={principal},password={password}"
        lines.append(f"--add-scram\nSCRAM-SHA-512=[{credential}]\n")
    return "".join(lines)


def _java(data_dir: Path) -> list[str]:
    return ["java", "-Xms256m", "-Xmx768m", f"-Dlog4j.configuration=file:{data_dir}/log4j.properties"]


def restart_broker(broker: BrokerProcess, jars_dir: Path) -> BrokerProcess:
    """Start a stopped broker again on its own data and ports (a fault test's broker comes back)."""
    return _launch(broker.data_dir, jars_dir, broker.bootstrap, broker.security)


def _launch(data_dir: Path, jars_dir: Path, bootstrap: str, security: BrokerSecurity | None = None) -> BrokerProcess:
    proc = _spawn(data_dir, jars_dir)
    broker = BrokerProcess(bootstrap=bootstrap, pid=proc.pid, data_dir=data_dir, process=proc, security=security)
    try:
        wait_until_ready(broker.bootstrap, START_TIMEOUT_S, [proc], client=operator_options(broker))
    except BaseException:
        broker.stop()
        raise
    return broker


def _spawn(data_dir: Path, jars_dir: Path) -> subprocess.Popen[bytes]:
    """Start the node configured in `data_dir`; its output is appended to `broker.out` there."""
    out = open(data_dir / "broker.out", "ab")  # noqa: SIM115 - handed to the child process
    proc = subprocess.Popen(
        [*_java(data_dir), "-cp", f"{jars_dir}/*", "kafka.Kafka", str(data_dir / "server.properties")],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it cleanly
    )
    out.close()
    return proc


def client_environment(data_dir: Path) -> dict[str, str]:
    """The `MASH_KAFKA_*` that let a process reach the secured embedded broker whose data is in `data_dir`
    whatever its own state directory: the broker's CA and the principals' password files."""
    return {"MASH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "MASH_KAFKA_SSL_CAFILE": str(data_dir / "tls" / "ca.pem"),
            "MASH_KAFKA_CREDENTIALS_DIR": str(data_dir / "credentials")}


def operator_options(broker: BrokerProcess) -> dict[str, Any]:
    """kafka-python options for the operator's connection to `broker` (plaintext or secured)."""
    if broker.security is None:
        return {}
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": OPERATOR,
            "sasl_plain_password": broker.security.passwords[OPERATOR], "ssl_cafile": str(broker.security.tls.ca_cert)}


def wait_until_ready(bootstrap: str, timeout_s: float, procs: Sequence[subprocess.Popen[bytes]] = (),
                     brokers: int = 1, client: Mapping[str, Any] | None = None) -> None:
    """Block until every address in `bootstrap` accepts a connection and a metadata request names
    at least `brokers` live brokers; fail at once if one of `procs` (the brokers started) exits."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        exited = [proc for proc in procs if proc.poll() is not None]
        if exited:
            raise KafkaSetupError(f"the broker exited with status {exited[0].returncode}; see its log")
        try:
            # A bare TCP probe first: the Kafka client backs off for seconds after a refusal.
            for address in bootstrap.split(","):
                host, port = address.rsplit(":", 1)
                socket.create_connection((host, int(port)), timeout=1).close()
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                                     client_id="mash-readiness", **(client or {}))
            try:
                if len(admin.describe_cluster().get("brokers") or ()) >= brokers:
                    return
            finally:
                admin.close()
        except (KafkaError, OSError) as exc:
            last_error = exc
        time.sleep(0.1)
    raise KafkaSetupError(f"the broker at {bootstrap} did not answer in {timeout_s:.0f} s: {last_error}")


# --- the detached broker behind `mash kafka start|stop` and `mash demo` -----------------------

def _state_file(settings: Settings) -> Path:
    return settings.state_dir / "kafka" / "broker.env"


def start_detached(settings: Settings) -> BrokerProcess:
    """Start a broker that outlives this command, recording where it is for later commands."""
    running = running_broker(settings)
    if running is not None:
        return running
    data_dir = settings.state_dir / "kafka"
    if data_dir.exists():
        shutil.rmtree(data_dir)  # a stale broker's data: the embedded stack starts clean
    broker = start_broker(data_dir, settings.kafka_jars_dir, secure=secured(settings))
    _state_file(settings).write_text(f"{broker.bootstrap}\n{broker.pid}\n")
    if broker.security is not None:
        from mash.acl_sync import sync_acls

        sync_acls(broker.bootstrap, settings)  # every service can do its work, and only that
    return broker


def running_broker(settings: Settings) -> BrokerProcess | None:
    state = _state_file(settings)
    if not state.exists():
        return None
    bootstrap, pid = state.read_text().split()
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return None
    return BrokerProcess(bootstrap=bootstrap, pid=int(pid), data_dir=state.parent)


def stop_detached(settings: Settings) -> bool:
    broker = running_broker(settings)
    if broker is None:
        return False
    broker.stop()
    _state_file(settings).unlink(missing_ok=True)
    return True


def resolve_bootstrap(settings: Settings) -> str:
    """The configured servers, else the embedded broker's; a clear error if there is neither."""
    if settings.bootstrap_servers:
        return settings.bootstrap_servers
    broker = running_broker(settings)
    if broker is None:
        print("mash: no Kafka broker: set MASH_BOOTSTRAP_SERVERS or run `mash kafka start`",
              file=sys.stderr)
        raise SystemExit(2)
    return broker.bootstrap
