"""Schema migrations (Alembic) on SQLite and PostgreSQL: a fresh database upgrades to exactly the
models, and a database from before this release keeps its rows and gains the new columns."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from mash.db import MIGRATIONS, make_engine, upgrade
from mash.models import Base
from mash.settings import PROJECT_ROOT, Settings
from tests.integration.conftest import env_for, mash

HEAD = "0010"  # the latest revision in mash/migrations/versions


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


def test_alerts_and_history_from_before_sealing_are_counted_not_flagged_and_nothing_new_passes_as_old(
        bare: Engine) -> None:
    """Migration 0008 records what stood when sealing began: those rows cannot be checked and are
    said to be so; a revision or a history line written after without a seal is named."""
    from sqlalchemy.orm import Session

    from services.sharing.audit_signing import AuditKeys
    from services.triage_app import sealed_views

    upgrade(bare, "0007")
    now = datetime(2026, 11, 20, tzinfo=UTC)
    with bare.begin() as connection:
        connection.execute(text(
            "INSERT INTO alerts (alert_id, person_id, revision, status, rag, rag_rank, reasons, agencies, event_ids, "
            "opened_at, updated_at, score, indicators, scoring_version, profile, claimed_by) VALUES ('a1', 'p1', 3, "
            "'OPEN', 'RED', 0, '[]', '[]', '[]', :now, :now, 90, '[]', '', '', 'alice')"), {"now": now})
        connection.execute(text("INSERT INTO alert_actions (alert_id, action, actor, detail, at) "
                                "VALUES ('a1', 'claimed', 'alice', '', :now)"), {"now": now})
    upgrade(bare)
    keys = AuditKeys.of(b"k" * 32)
    with Session(bare) as session:
        report = sealed_views.check(session, keys)
    assert report.mismatches == []
    assert report.unsealed_legacy == {"alerts": 1, "history lines": 1}
    with bare.begin() as connection:
        connection.execute(text("UPDATE alerts SET revision = 4, rag = 'GREEN' WHERE alert_id = 'a1'"))
        connection.execute(text("INSERT INTO alert_actions (alert_id, action, actor, detail, at) "
                                "VALUES ('a1', 'released', 'alice', '', :now)"), {"now": now})
    with Session(bare) as session:
        report = sealed_views.check(session, keys)
    assert "alert a1: revision 4 has no sealed audit entry signed by the hub's key" in report.mismatches
    assert any("history line released by alice" in m for m in report.mismatches), report.mismatches
    bare.dispose()


def test_a_database_made_by_create_all_with_todays_models_is_taken_as_current(bare: Engine) -> None:
    Base.metadata.create_all(bare)  # as the benchmarks make theirs
    upgrade(bare)
    with bare.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD
    bare.dispose()


def test_processes_never_migrate_a_server_database_and_say_what_to_run(settings: Settings) -> None:
    """On PostgreSQL a process refuses a schema that is not the code's (exit 2, naming `mash db
    upgrade`), and `mash db upgrade` as the processes' role refuses, naming the owner's URL; then,
    as the owner, it migrates and grants, and the process starts. The embedded SQLite file is
    migrated in place."""
    if not settings.sqlalchemy_url().startswith("postgresql"):
        assert mash(settings, "audit", "verify", "--database-only", check=False).returncode == 0  # SQLite: migrated
        return
    refused = mash(settings, "audit", "verify", check=False)
    assert refused.returncode == 2 and "Run `mash db upgrade` first" in refused.stderr, refused.stderr
    as_runtime = mash(settings, "db", "upgrade", check=False)  # the processes' environment: no owner URL
    assert as_runtime.returncode == 2 and "MASH_DATABASE_OWNER_URL" in as_runtime.stderr, as_runtime.stderr
    upgraded = subprocess.run([sys.executable, "-m", "mash.cli", "db", "upgrade"], cwd=PROJECT_ROOT,
                              env={**env_for(settings), "MASH_DATABASE_OWNER_URL": settings.owner_url()},
                              capture_output=True, text=True, timeout=300, check=False)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"-> {HEAD}" in upgraded.stdout and "least privilege" in upgraded.stdout, upgraded.stdout
    assert mash(settings, "audit", "verify", "--database-only", check=False).returncode == 0


def test_profiles_from_before_the_address_line_keep_their_rows_and_a_new_home_is_a_new_description(
        bare: Engine) -> None:
    """Migration 0009 puts the address line in the description's key: the child described at a new
    home (or the same home now written) is a second row, never an update of the first. Going back
    keeps one row per description."""
    upgrade(bare, "0008")
    profile = {"person_id": "p1", "given": "ASHA", "family": "KHAN", "dob": "2015-03-04", "sex": "F",
               "postcode": "LS61AB", "first_event_id": "e1", "first_seen_ms": 1, "events": 2}
    columns = ", ".join(profile)
    with bare.begin() as connection:
        connection.execute(text(f"INSERT INTO person_profiles ({columns}) VALUES (:{', :'.join(profile)})"),
                           profile)
    upgrade(bare)
    with bare.begin() as connection:
        connection.execute(text(f"INSERT INTO person_profiles ({columns}, address) "
                                f"VALUES (:{', :'.join(profile)}, '12 MAIN STREET')"), profile)
        rows = connection.execute(text("SELECT address, events FROM person_profiles ORDER BY address")).all()
    assert [tuple(r) for r in rows] == [("", 2), ("12 MAIN STREET", 2)]
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with bare.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
    with bare.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM person_profiles")).scalar_one() == 1
    bare.dispose()
