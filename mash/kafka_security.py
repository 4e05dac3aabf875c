"""How a process of the bus connects to Kafka: in plaintext, or over TLS as its own SASL/SCRAM principal.

Every Kafka client the bus makes takes its connection options from here, for kafka-python
(connectors, tools) or aiokafka (the hub), so one setting moves the whole bus:

- `MASH_KAFKA_SECURITY_PROTOCOL=SASL_SSL`: TLS, and SCRAM-SHA-512 as the service's principal;
- the principal and its password: `MASH_KAFKA_USERNAME` / `MASH_KAFKA_PASSWORD` in production
  (one pair per service, from a secret store); on the embedded stack each service connects as its
  own principal (`mash.kafka_acls`) with the password the embedded broker made for it at start,
  kept under `state_dir/kafka/credentials/` readable by its owner only;
- the CA the brokers' certificates chain to: `MASH_KAFKA_SSL_CAFILE`, else the embedded broker's
  throwaway CA, else the system's trust store.

Passwords are never logged or printed; an error names the principal and what to do.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import ssl
from pathlib import Path
from typing import Any

from mash.settings import Settings

MECHANISM = "SCRAM-SHA-512"

# The principals: each service connects as its own (what each may do: `mash.kafka_acls`).
HUB = "hub"
TRIAGE_APP = "triage-app"
OPERATOR = "operator"  # operators' tools: the broker's super user (provisioning, ACLs, lag, audit)
BROKER = "broker"  # the brokers among themselves; never a service's identity


# A principal's name is also its password file's name: nothing that could lead out of the folder.
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")


def connector(agency: str) -> str:
    return f"connector-{agency}"


class KafkaSecurityError(RuntimeError):
    """A process cannot connect securely as configured; the message names the setting and what to do."""


class KafkaCredentialsMissing(KafkaSecurityError):
    """A secured bus and no password for this process's principal; the message says where to set one."""


class _RedactPasswords(logging.Filter):
    """kafka-python's admin client logs its whole configuration at DEBUG, password included: not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict):  # a lone mapping argument is kept as the args themselves
            record.args = _redacted(record.args)
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        return True


def _redacted(value: Any) -> Any:
    if isinstance(value, dict) and value.get("sasl_plain_password"):
        return {**value, "sasl_plain_password": "<redacted>"}
    return value


logging.getLogger("kafka.admin.client").addFilter(_RedactPasswords())


def credentials_dir(settings: Settings) -> Path:
    """Where the embedded broker keeps one password file per principal (made at each start)."""
    return settings.kafka_credentials_dir or settings.state_dir / "kafka" / "credentials"


def embedded_ca(settings: Settings) -> Path:
    return settings.state_dir / "kafka" / "tls" / "ca.pem"


def new_passwords(principals: tuple[str, ...]) -> dict[str, str]:
    """A fresh random password per principal."""
    return {principal: secrets.token_urlsafe(24) for principal in principals}


def write_passwords(directory: Path, principals: tuple[str, ...]) -> dict[str, str]:
    """A fresh random password per principal, each in a file of `directory` only its owner can read."""
    passwords = new_passwords(principals)
    for principal, password in passwords.items():
        write_password(directory, principal, password)
    return passwords


def write_password(directory: Path, principal: str, password: str) -> None:
    """Replace `principal`'s password file in one step: a reader sees the old password or the new one,
    and no one but the owner ever can (the file is made 0600 before a byte is written)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    staged = directory / f".{principal}.new"
    staged.unlink(missing_ok=True)
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password)
    staged.replace(directory / principal)


def principal_of(settings: Settings, service: str) -> str:
    """The principal this process connects as: the configured one, else its service's own."""
    return settings.kafka_username or service


def password_of(settings: Settings, service: str) -> str:
    configured = settings.kafka_password.get_secret_value()
    if configured:
        return configured
    principal = principal_of(settings, service)
    if not PRINCIPAL_NAME.fullmatch(principal):
        raise KafkaSecurityError(f"MASH_KAFKA_USERNAME={principal!r} is not a principal's name (letters, digits, "
                                 "'-', '_' and '.', not starting with '.'): set it to the service's principal")
    path = credentials_dir(settings) / principal
    try:
        return path.read_text().strip()
    except OSError:
        raise KafkaCredentialsMissing(
            f"Kafka is secured (SASL_SSL) and there is no password for principal "
            f"{principal_of(settings, service)!r}: set MASH_KAFKA_USERNAME and MASH_KAFKA_PASSWORD, or start the "
            f"embedded broker with `mash kafka start` (it writes {path})") from None


def cafile(settings: Settings) -> Path | None:
    if settings.kafka_ssl_cafile is not None:
        if not settings.kafka_ssl_cafile.is_file():
            raise KafkaSecurityError(f"MASH_KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile} is not a readable file: set "
                                     "it to the PEM file of the CA the brokers' certificates chain to")
        return settings.kafka_ssl_cafile
    embedded = embedded_ca(settings)
    return embedded if embedded.exists() else None


def secured(settings: Settings) -> bool:
    return settings.kafka_security_protocol == "SASL_SSL"


def kafka_python_options(settings: Settings, service: str) -> dict[str, Any]:
    """Keyword arguments for a kafka-python client (producer, consumer, admin) of `service`."""
    if not secured(settings):
        return {"security_protocol": "PLAINTEXT"}
    ca = cafile(settings)
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal_of(settings, service),
            "sasl_plain_password": password_of(settings, service),
            "ssl_check_hostname": True, **({"ssl_cafile": str(ca)} if ca else {})}


def aiokafka_options(settings: Settings, service: str) -> dict[str, Any]:
    """Keyword arguments for an aiokafka client of `service` (the hub's stages)."""
    if not secured(settings):
        return {"security_protocol": "PLAINTEXT"}
    ca = cafile(settings)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
            "sasl_plain_username": principal_of(settings, service),
            "sasl_plain_password": password_of(settings, service), "ssl_context": context}
