"""The hub's SQLite commits leave copying the write-ahead log to a thread of its own."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from mash.db import HUB_AUTOCHECKPOINT_PAGES, WalCheckpoints, make_engine
from mash.hub_run import wait_until

ROWS = 2000
BLOB = "x" * 4000  # about 8 MB in all: well past SQLite's 1,000-page automatic checkpoint


def _write(engine: Engine) -> None:
    with engine.begin() as db:
        db.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    for _ in range(0, ROWS, 200):
        with engine.begin() as db:
            db.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": BLOB}] * 200)



def test_commits_apart_from_checkpoints_leave_the_log_to_the_checkpoint_thread(tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{database}", checkpoints_apart=True)
    _write(engine)
    assert database.stat().st_size < 1_000_000  # no commit copied the log into the file
    checkpoints = WalCheckpoints(engine, every_s=0.05)
    try:
        assert wait_until(lambda: checkpoints.runs > 0, 20)
        assert wait_until(lambda: database.stat().st_size > ROWS * len(BLOB), 20)  # the thread copied it
        with engine.connect() as db:
            assert db.execute(text("SELECT count(*) FROM t")).scalar() == ROWS
    finally:
        checkpoints.stop()
        engine.dispose()


def test_by_default_a_commit_checkpoints_the_log_itself(tmp_path: Path) -> None:
    database = tmp_path / "app.db"
    engine = make_engine(f"sqlite:///{database}")
    _write(engine)
    assert database.stat().st_size > ROWS * len(BLOB) / 2  # the commits past 1,000 pages copied it
    engine.dispose()


def test_a_writer_that_never_pauses_keeps_the_log_within_the_backstop(tmp_path: Path) -> None:
    """Commits back to back leave a checkpoint thread no moment to start the log again (a soak of
    the hub saw it reach gigabytes): the commit that takes it past the backstop copies it."""
    database = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{database}", checkpoints_apart=True)
    with engine.begin() as db:
        db.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    wal = Path(f"{database}-wal")
    largest = 0
    for _ in range(400):  # about 80 MB of rows, twice the backstop
        with engine.begin() as db:
            db.execute(text("INSERT INTO t (body) VALUES (:b)"), [{"b": BLOB}] * 50)
        largest = max(largest, wal.stat().st_size)
    engine.dispose()
    assert largest < HUB_AUTOCHECKPOINT_PAGES * 4096 * 1.3
