"""Integration fixtures: one real Kafka broker per session, and per-test topics, groups and databases.

Set MASH_TEST_BOOTSTRAP_SERVERS to use a running broker instead of starting one, and
MASH_TEST_POSTGRES_URL (a database the tests may freely write to) to run the database tests on
PostgreSQL as well as SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mash.db import db_upgrade, engine_for, make_engine, session_factory
from mash.local_kafka import start_broker
from mash.models import Base
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import provision
from tests.support.bus import PLAINTEXT_FOR_DEVELOPMENT, bus_environment, deployment_acls, operator_client


@pytest.fixture(scope="session")
def kafka_bus() -> Iterator[tuple[str, dict[str, str]]]:
    """The session's broker, secured as a deployment's is, and the environment that reaches it."""
    external = os.environ.get("MASH_TEST_BOOTSTRAP_SERVERS")
    if external:  # its security as the environment already says
        yield external, {}
        return
    secure = not PLAINTEXT_FOR_DEVELOPMENT
    with tempfile.TemporaryDirectory(prefix="mash-kafka-") as data_dir:
        broker = start_broker(Path(data_dir), Settings().kafka_jars_dir, secure=secure)
        try:
            yield broker.bootstrap, bus_environment(Path(data_dir), secure)
        finally:
            broker.stop()


@pytest.fixture(scope="session")
def bootstrap(kafka_bus: tuple[str, dict[str, str]]) -> str:
    return kafka_bus[0]


@pytest.fixture(autouse=True)
def _bus_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test on the session's broker, and every process it starts, connect as a deployment does."""
    if "bootstrap" in request.fixturenames:
        for name, value in request.getfixturevalue("kafka_bus")[1].items():
            monkeypatch.setenv(name, value)


DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("MASH_TEST_POSTGRES_URL") else [])
# The schema owner, for migrations and cleaning up; MASH_TEST_POSTGRES_URL is then the processes'
# least-privileged role (infra/postgres/test-cluster.sh makes both).
OWNER_URL = os.environ.get("MASH_TEST_POSTGRES_OWNER_URL", "")


def owner_of(database_url: str) -> str:
    return OWNER_URL if OWNER_URL and database_url == os.environ.get("MASH_TEST_POSTGRES_URL") else ""


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mash.db'}"
        return
    url = os.environ["MASH_TEST_POSTGRES_URL"]
    yield url
    engine = make_engine(OWNER_URL or url)
    Base.metadata.drop_all(engine)  # leave the next test a clean database
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def ready_engine(settings: Settings) -> Engine:
    """The test's database as a deployment has it: `mash db upgrade` run by the schema owner
    (granting the processes' role on PostgreSQL), then an engine as the processes have it."""
    db_upgrade(settings)
    return engine_for(settings)


@pytest.fixture
def settings(bootstrap: str, database_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: its own topics (prefix), consumer group, state and database, and the
    declared ACLs for them while the test runs."""
    run = uuid.uuid4().hex[:8]
    with deployment_acls(Settings(bootstrap_servers=bootstrap, topic_prefix=f"t{run}.", app_id=f"mash-test-{run}",
                                  state_dir=tmp_path, database_url=SecretStr(database_url), stage_retry_budget_s=5,
                                  database_owner_url=SecretStr(owner_of(database_url)))) as settings:
        yield settings


@pytest.fixture
def provisioned(settings: Settings) -> Settings:
    provision(settings.bootstrap_servers, settings)
    return settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = ready_engine(settings)
    yield engine
    engine.dispose()


def env_for(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "MASH_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "MASH_TOPIC_PREFIX": settings.topic_prefix,
        "MASH_APP_ID": settings.app_id,
        "MASH_STATE_DIR": str(settings.state_dir),
        "MASH_DATABASE_URL": settings.sqlalchemy_url(),
        "MASH_STAGE_RETRY_BUDGET_S": str(settings.stage_retry_budget_s),
        **({"MASH_MATCH_MODEL": str(settings.match_model)} if settings.match_model else {}),
    }


def mash(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mash.cli", *args], env=env_for(settings), cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture
def hub_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts hub workers (real `mash hub worker` processes) for the test and stops them after it."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        if not started:
            db_upgrade(settings)  # as a deployment does before it starts processes (they never migrate)
        with (tmp_path / f"hub-{len(started)}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "mash.cli", "hub", "worker", "--loglevel", "info"],
                                    env=env_for(settings), cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM, as a supervisor stops a process; SIGKILL if it has not ended within `timeout_s`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def publish_record(settings: Settings, tmp_path: Path, agency: str, record: dict[str, Any]) -> dict[str, Any]:
    """Send one source record through the agency's real connector mapping; the envelope it sent."""
    from kafka import KafkaProducer

    from connectors.registry import build_connector
    from mash.codec import Codec
    from mash.topics import inbound, topic_name

    connector = build_connector(agency, tmp_path / "connectors")
    event = connector.to_event(connector.map(record))
    producer = KafkaProducer(**operator_client(settings), acks="all")
    producer.send(topic_name(inbound(agency), settings), key=event["envelope"]["subject"]["local_id"].encode(),
                  value=Codec().encode(event, connector.schema))
    producer.flush()
    producer.close()
    return dict(event["envelope"])


def wait_for(condition: Callable[[], Any], timeout_s: float = 240.0, what: str = "condition") -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def data(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    """The triage store seeded with three children's alerts and timelines, and a user of each kind."""
    from tests.support.triage_data import add_users, seed

    add_users(sessions)
    return seed(sessions)
