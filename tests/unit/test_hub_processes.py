"""A hub worker's stage processes are supervised as one worker (real processes, no broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mash.hub_run import wait_until
from mash.settings import PROJECT_ROOT, Settings
from services.hub.processes import stage_env, supervise

SLEEPER = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)"


def _sleeper(pid_file: Path) -> list[str]:
    return [sys.executable, "-c", SLEEPER, str(pid_file)]



def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _supervisor(tmp_path: Path, commands: dict[str, list[str]]) -> subprocess.Popen[bytes]:
    code = ("import sys; from services.hub.processes import supervise; "
            f"sys.exit(supervise({commands!r}, {{}}, grace_s=10, poll_s=0.05))")
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT)


def _pids(files: list[Path]) -> list[int]:
    assert wait_until(lambda: all(f.exists() and f.read_text() for f in files), 20), "the stage processes did not start"
    return [int(f.read_text()) for f in files]


def test_a_stage_process_that_fails_stops_the_others_and_the_worker_exits_with_its_status(tmp_path: Path) -> None:
    started = time.monotonic()
    code = supervise({"enrichment": _sleeper(tmp_path / "a"),
                      "triage": [sys.executable, "-c", "import time, sys; time.sleep(0.5); sys.exit(70)"]},
                     {}, grace_s=10, poll_s=0.05)
    assert code == 70  # the guard's "infrastructure failed": the supervisor restarts the whole worker
    assert not _alive(int((tmp_path / "a").read_text()))
    assert time.monotonic() - started < 30  # the sleeper was stopped, not waited out


def test_sigterm_to_the_worker_stops_every_stage_process_and_it_exits_0(tmp_path: Path) -> None:
    files = [tmp_path / "a", tmp_path / "b"]
    worker = _supervisor(tmp_path, {"enrichment": _sleeper(files[0]), "sharing": _sleeper(files[1])})
    pids = _pids(files)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert wait_until(lambda: not any(_alive(p) for p in pids), 20)


def test_a_worker_killed_outright_takes_its_stage_processes_with_it(tmp_path: Path) -> None:
    """kill -9 of the worker (a crash, the OOM killer) leaves no orphan stage holding partitions."""
    files = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    worker = _supervisor(tmp_path, {name: _sleeper(f) for name, f in zip(("enrichment", "sharing", "triage"), files,
                                                                          strict=True)})
    pids = _pids(files)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=10)
    assert wait_until(lambda: not any(_alive(p) for p in pids), 20), "a stage process outlived its worker"


def test_stage_processes_take_consecutive_metrics_ports_from_a_fixed_one_or_free_ones() -> None:
    assert [stage_env(Settings(metrics_port=9100), n)["MASH_METRICS_PORT"] for n in range(3)] == \
        ["9100", "9101", "9102"]
    assert stage_env(Settings(metrics_port=0), 2)["MASH_METRICS_PORT"] == "0"
