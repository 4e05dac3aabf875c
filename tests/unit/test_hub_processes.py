"""A hub worker's stage processes are supervised as one worker (real processes, no broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _in_a_pid_namespace_as_pid_1() -> list[str] | None:
    """The command prefix that runs a process as PID 1 of a PID namespace of its own (a container's
    main process, as `ENTRYPOINT ["mash"]` is under Docker), or None where this user may not."""
    prefix = ["unshare", "--user", "--map-root-user", "--pid", "--fork"]
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", "import os; print(os.getpid())"],
                               capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return prefix if probe.returncode == 0 and probe.stdout.strip() == "1" else None


def test_a_worker_that_is_pid_1_of_its_container_runs_its_stage_processes(tmp_path: Path) -> None:
    """In a container the worker is PID 1, so its stage processes' parent is 1 from the start: that
    must not be taken for "the worker died before the parent-death signal was set"."""
    prefix = _in_a_pid_namespace_as_pid_1()
    if prefix is None:
        pytest.skip("no user and PID namespaces here (unshare)")
    started = tmp_path / "started"
    stage = f"import sys; open({str(started)!r}, 'w').write('yes'); sys.exit(3)"
    code = ("import sys; from services.hub.processes import supervise; "
            f"sys.exit(supervise({{'triage': [sys.executable, '-c', {stage!r}]}}, {{}}, grace_s=10, poll_s=0.05))")
    worker = subprocess.run([*prefix, sys.executable, "-c", code], cwd=PROJECT_ROOT, timeout=60)
    assert started.exists(), "the stage process never ran"
    assert worker.returncode == 3  # the stage's own status, passed on


TERMED = ("import os, signal, sys, time\n"
          "def leave(*_): open(sys.argv[1] + '.term', 'w').write('term'); sys.exit(0)\n"
          "signal.signal(signal.SIGTERM, leave)\n"
          "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)")


def test_sigterm_while_the_stage_processes_start_stops_those_started_gracefully(tmp_path: Path) -> None:
    """A supervisor stopping the worker just after starting it (each stage process is slow to start
    here): the stages already running are asked to finish (SIGTERM), not killed with the worker."""
    first, second = tmp_path / "a", tmp_path / "b"
    code = ("import subprocess, sys, time\n"
            "from services.hub import processes\n"
            "class SlowToStart(subprocess.Popen):\n"
            "    def __init__(self, *args, **kwargs):\n"
            "        super().__init__(*args, **kwargs)\n"
            "        time.sleep(5)\n"
            "processes.subprocess.Popen = SlowToStart\n"
            f"sys.exit(processes.supervise({{'enrichment': [sys.executable, '-c', {TERMED!r}, {str(first)!r}], "
            f"'sharing': [sys.executable, '-c', {TERMED!r}, {str(second)!r}]}}, {{}}, grace_s=10, poll_s=0.05))")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT)
    [pid] = _pids([first])
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert wait_until(lambda: not _alive(pid), 20)
    assert (tmp_path / "a.term").exists(), "the stage process was killed, not stopped"


def test_the_worker_exits_with_the_status_of_the_stage_that_failed_not_of_one_killed_after_it(
        tmp_path: Path) -> None:
    """The stage that failed says why (70: infrastructure); one killed because it outlived the grace
    after it (137) must not hide that, whatever the order the stages were named in."""
    stubborn = ("import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(120)")
    code = supervise({"enrichment": [sys.executable, "-c", stubborn, str(tmp_path / "a")],
                      "triage": [sys.executable, "-c", "import time, sys; time.sleep(1); sys.exit(70)"]},
                     {}, grace_s=1, poll_s=0.05)
    assert code == 70
