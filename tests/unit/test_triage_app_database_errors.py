"""The triage app on SQLite: a database that does not answer is a 503 to try again; a fault in the
app's own SQL stays a 500 (SQLite reports both as OperationalError)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text

from mash.db import engine_for, session_factory
from mash.settings import Settings
from services.triage.scoring_file import load_scoring
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.support.triage_data import PASSWORD, add_users


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    folder = tmp_path / "db"
    engine = engine_for(Settings(database_url=SecretStr(f"sqlite:///{folder / 'mash.db'}"), state_dir=folder))
    yield engine
    engine.dispose()


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    sessions = session_factory(engine)
    add_users(sessions)
    with TestClient(create_app(AppConfig(sessions, load_scoring(), "test-secret-" * 4)),
                    raise_server_exceptions=False) as client:
        response = client.post("/api/login", json={"username": "alice", "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield client


def test_a_query_on_a_table_the_database_lacks_is_a_fault_answered_500_not_503(client: TestClient,
                                                                                 engine: Engine) -> None:
    """"No such table" (a migration not applied, a typo in the SQL) will not pass by trying again in a
    minute: it must surface as the fault it is, not as the database being briefly away."""
    with engine.begin() as db:
        db.execute(text("DROP TABLE alerts"))
    response = client.get("/api/alerts")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_a_database_file_that_cannot_be_opened_is_answered_503(client: TestClient, engine: Engine) -> None:
    engine.dispose()  # the pool's open connections would still read the removed file
    shutil.rmtree(Path(str(engine.url.database)).parent)
    response = client.get("/api/alerts")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30" and "unavailable" in response.json()["detail"]


def test_a_page_while_the_database_cannot_be_opened_is_answered_503_too(client: TestClient, engine: Engine) -> None:
    """The session lives in the database: the page saying it is away must not need it."""
    engine.dispose()
    shutil.rmtree(Path(str(engine.url.database)).parent)
    response = client.get("/")
    assert response.status_code == 503 and "unavailable" in response.text
