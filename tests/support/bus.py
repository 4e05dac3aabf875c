"""The test suite's bus is secured as a deployment's is: TLS, SCRAM-SHA-512 per service, ACLs enforced.

Every test that uses a broker sees it through the environment a deployment's processes have
(`bus_environment`); each test's deployment (its own topic prefix and consumer groups) gets the
declared ACLs while it lives (`deployment_acls`); and a test's own clients (reading a topic whole,
writing a crafted message) connect as the operator (`operator_client`), as an operator's tools do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mash.acl_sync import revoke_acls, sync_acls
from mash.kafka_security import OPERATOR, aiokafka_options, kafka_python_options, secured
from mash.local_kafka import client_environment
from mash.settings import Settings

# Development only: MASH_TEST_KAFKA_SECURITY_PROTOCOL=PLAINTEXT runs the suite's broker in plaintext.
PLAINTEXT_FOR_DEVELOPMENT = os.environ.get("MASH_TEST_KAFKA_SECURITY_PROTOCOL", "SASL_SSL") == "PLAINTEXT"


def bus_environment(broker_dir: Path, secure: bool = True) -> dict[str, str]:
    """The `MASH_KAFKA_*` a process needs to use the embedded broker whose data is in `broker_dir`,
    whatever its own state directory: its CA and the principals' password files."""
    return client_environment(broker_dir) if secure else {"MASH_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}


def secure_environment(monkeypatch: pytest.MonkeyPatch, broker_dir: Path) -> None:
    """A test's own secured broker (`start_broker(..., secure=True)` in `broker_dir`), reached by the
    test and every process it starts, as a deployment reaches it."""
    for name, value in bus_environment(broker_dir).items():
        monkeypatch.setenv(name, value)


@contextmanager
def deployment_acls(settings: Settings) -> Iterator[Settings]:
    """The declared ACLs for `settings`' deployment while the block runs, revoked after it (the
    broker is shared by every test of the session)."""
    if not secured(settings):
        yield settings
        return
    sync_acls(settings.bootstrap_servers, settings)
    try:
        yield settings
    finally:
        revoke_acls(settings.bootstrap_servers, settings)


def operator_client(settings: Settings | str, **options: Any) -> dict[str, Any]:
    """kafka-python keyword arguments for a test's own client, as the operator, on `settings`' bus (or
    on the bus at a bootstrap address, secured as the environment says)."""
    if isinstance(settings, str):
        settings = Settings(bootstrap_servers=settings)
    return {"bootstrap_servers": settings.bootstrap_servers, **kafka_python_options(settings, OPERATOR), **options}


def operator_aioclient(settings: Settings | str, **options: Any) -> dict[str, Any]:
    """The same for an aiokafka client."""
    if isinstance(settings, str):
        settings = Settings(bootstrap_servers=settings)
    return {"bootstrap_servers": settings.bootstrap_servers, **aiokafka_options(settings, OPERATOR), **options}
