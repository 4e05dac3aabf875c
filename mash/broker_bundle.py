"""What a broker of the bus in a container needs, and what each service needs to reach it, made once.

`docker-compose.yml` runs Apache Kafka's own image, configured exactly as the embedded broker is
(`mash.local_kafka`: TLS on every listener, SCRAM-SHA-512 for clients, the controllers reachable
only with the broker's certificate, ACLs enforced), from a bundle this module writes into volumes
before the broker starts (`mash kafka bundle`):

    <out>/broker/      server.properties, scram.args (every principal's SCRAM credential, salted, for
                       the storage format), cluster.id, client.properties (the health check's), tls/
    <out>/<principal>/ <principal> (its password) and ca.pem, one folder per principal: each
                       service mounts its own folder only, so no service can read another's password

Made once: a bundle that exists is left as it is (the broker's storage holds its credentials), so
`docker compose up` again changes nothing. Production uses the partnership's PKI and secret store
(`MASH_KAFKA_SSL_CAFILE`, `MASH_KAFKA_USERNAME` / `MASH_KAFKA_PASSWORD`) instead.
"""

from __future__ import annotations

import fcntl
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mash.kafka_acls import SERVICE_PRINCIPALS, SUPER_USERS
from mash.kafka_security import BROKER, MECHANISM, new_passwords, write_password
from mash.local_kafka import BROKER_CN, BrokerSecurity, Node, new_cluster_id, scram_lines, server_properties
from mash.local_tls import TlsFiles, make_tls

MOUNTED_AT = Path("/etc/kafka/mash")  # where the broker's container mounts `<out>/broker`
DATA_DIR = Path("/var/lib/kafka/data")  # the broker's log directory in its container (a volume)
VALID_DAYS = 825  # the longest a TLS server certificate may be trusted for (CA/Browser Forum, 2018)


# A DNS name or an IPv4 address, and nothing else: it is written into the broker's configuration.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


class BundleExists(RuntimeError):
    """The bundle is there already; the message says how to make a new one."""


def write_bundle(out: Path, host: str = "kafka", port: int = 9092, controller_port: int = 9093,
                 mounted_at: Path = MOUNTED_AT, data_dir: Path = DATA_DIR) -> list[str]:
    """Write the bundle under `out` for a broker reached as `host:port`; the principals it made."""
    if not HOSTNAME.fullmatch(host) or not all(0 < p < 65536 for p in (port, controller_port)) \
            or port == controller_port:
        raise ValueError(f"not a host name and ports a broker can be reached by: {host!r}, {port}, {controller_port} "
                         "(a DNS name such as kafka or an IPv4 address; two different ports, 1-65535)")
    broker_dir = out / "broker"
    broker_dir.mkdir(parents=True, exist_ok=True)
    with _only_run(broker_dir):
        if complete(out):
            raise BundleExists(f"{broker_dir} holds a bundle already (the broker's storage was formatted with its "
                               "credentials); remove the broker's volumes and the bundle's to make a new one")
        return _write(out, broker_dir, host, Node(1, port, controller_port, host=host, bind="0.0.0.0"),
                      mounted_at, data_dir)  # bind: inside the container, its network only


def complete(out: Path) -> bool:
    """Whether the bundle under `out` was made whole (its cluster id is written last, in one step)."""
    try:
        return bool((out / "broker" / "cluster.id").read_text().strip())
    except OSError:
        return False


@contextmanager
def _only_run(broker_dir: Path) -> Iterator[None]:
    """One run at a time (two at once would leave folders whose passwords the broker was never given)."""
    with (broker_dir / ".making").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BundleExists(f"another run is making the bundle in {broker_dir} now") from None
        yield


def _write(out: Path, broker_dir: Path, host: str, node: Node, mounted_at: Path, data_dir: Path) -> list[str]:
    made = make_tls(broker_dir / "tls", BROKER_CN, hosts=(host,), valid_days=VALID_DAYS)
    principals = (*SUPER_USERS, *SERVICE_PRINCIPALS)
    passwords = new_passwords(principals)  # each kept in its principal's own folder below, and nowhere else
    mounted = TlsFiles(mounted_at / "tls" / made.ca_cert.name, mounted_at / "tls" / made.broker_keystore.name)
    security = BrokerSecurity(mounted, passwords)
    _write_private(broker_dir / "server.properties", server_properties(data_dir, node, [node], security=security))
    # Salted: the broker's volume keeps no service's password, only what the broker itself stores.
    _write_private(broker_dir / "scram.args", scram_lines(passwords, salted=True))
    _write_private(broker_dir / "client.properties", _client_properties(BROKER, passwords[BROKER], mounted.ca_cert))
    for principal in principals:
        if principal == BROKER:
            continue
        write_password(out / principal, principal, passwords[principal])
        shutil.copyfile(made.ca_cert, out / principal / "ca.pem")
    _write_private(broker_dir / "cluster.id", new_cluster_id() + "\n")  # last, in one step: the bundle is whole
    return [p for p in principals if p != BROKER]


def _client_properties(principal: str, password: str, ca: Path) -> str:
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
            f'username="{principal}" password="{password}";')
    return "\n".join(["security.protocol=SASL_SSL", f"sasl.mechanism={MECHANISM}", f"sasl.jaas.config={jaas}",
                      "ssl.truststore.type=PEM", f"ssl.truststore.location={ca}", ""])


def _write_private(path: Path, text: str) -> None:
    """Owner-only from its first byte: these files hold passwords."""
    write_password(path.parent, path.name, text)
