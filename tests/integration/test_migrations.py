"""Schema migrations (Alembic) on SQLite and PostgreSQL: a fresh database upgrades to exactly the
models, and a database from before this release keeps its rows and gains the new columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from mash.db import make_engine, upgrade
from mash.models import Base
from mash.settings import Settings

HEAD = "0005"  # the latest revision in mash/migrations/versions


@pytest.fixture
def bare(settings: Settings) -> Engine:
    """The test's database with nothing in it yet (the `engine` fixture would upgrade it)."""
    return make_engine(settings.owner_url())  # migrations run as the schema owner


def test_a_fresh_database_upgrades_to_exactly_the_models(bare: Engine) -> None:
    upgrade(bare)
    with bare.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                       Base.metadata)
    assert differences == []
    bare.dispose()


def test_a_database_from_before_keeps_its_alerts_and_gains_the_triage_columns(bare: Engine) -> None:
    upgrade(bare, "0001")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with bare.begin() as connection:
        connection.execute(text(
            "INSERT INTO alerts (alert_id, person_id, revision, status, rag, reasons, agencies, event_ids, "
            "opened_at, updated_at) VALUES ('a1', 'p1', 3, 'OPEN', 'RED', '[]', :agencies, '[]', :now, :now)"),
            {"now": now, "agencies": '["POLICE"]'})
        connection.execute(text("DROP TABLE alembic_version"))  # as create_all left it, before migrations
    upgrade(bare)
    with bare.begin() as connection:
        row = connection.execute(text("SELECT rag, rag_rank, score, claimed_by, revision FROM alerts")).one()
        assert tuple(row) == ("RED", 0, 0, None, 3)
        assert {"users", "timeline_events", "triage_decisions", "alert_actions"} <= set(
            inspect(connection).get_table_names())
    with pytest.raises(DBAPIError, match="append-only"), bare.begin() as connection:
        connection.execute(text("INSERT INTO audit_decision_sets (digest, body) VALUES ('d', '[]')"))
        connection.execute(text("DELETE FROM audit_decision_sets"))
    bare.dispose()


def test_a_database_made_by_create_all_with_todays_models_is_taken_as_current(bare: Engine) -> None:
    Base.metadata.create_all(bare)  # as the benchmarks make theirs
    upgrade(bare)
    with bare.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    bare.dispose()
