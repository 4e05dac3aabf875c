"""A hub worker as one process per stage, watched by the worker process itself.

Python runs one thread of bytecode at a time, so the three stages in one process share one core
whatever the machine has (measured: one process 709 events/s; a process per stage 1,324/s on 2
cores, the broker beside them). Each stage process is an ordinary `mash hub worker --stages X`:
its own consumer group member, metrics endpoint and guard. The worker process supervises them
as a unit, the way an operator's supervisor sees one worker:

- SIGTERM or SIGINT is passed to every stage process; each finishes its batch and leaves its group.
- A stage process that exits stops the others, and the worker exits with its status (70 for the
  guard's "infrastructure failed"), so the supervisor restarts the whole worker.
- The worker killed outright (SIGKILL, the machine's OOM killer) takes its stage processes with it
  (the kernel's parent-death signal): never an orphan stage holding partitions.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import FrameType

from mash.settings import PROJECT_ROOT, Settings

PR_SET_PDEATHSIG = 1
log = logging.getLogger("mash.hub")


def run_stages(settings: Settings, stages: Sequence[str], loglevel: str) -> int:
    """`mash hub worker`: each stage as `mash hub worker --stages <stage>`, supervised as one worker."""
    return supervise({stage: [sys.executable, "-m", "mash.cli", "hub", "worker", "--stages", stage,
                              "--loglevel", loglevel] for stage in stages},
                     {stage: stage_env(settings, n) for n, stage in enumerate(stages)},
                     settings.stage_retry_budget_s + 60)


def stage_env(settings: Settings, index: int) -> dict[str, str]:
    """A fixed metrics port gives the stage processes consecutive ports; 0 lets each take a free one."""
    port = settings.metrics_port + index if settings.metrics_port else 0
    return {**os.environ, "MASH_METRICS_PORT": str(port)}


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:  # runs in the child between fork and exec
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # The parent died before the line above, and the child went to a reaper: do not outlive it. Not
    # "the parent is 1": in a container the worker itself is PID 1.
    if os.getppid() != parent:
        os._exit(1)


def supervise(commands: Mapping[str, list[str]], envs: Mapping[str, dict[str, str]], grace_s: float,
              poll_s: float = 0.2) -> int:
    """Run each command until one exits or this process is told to stop; its status, or 0."""
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    # Handled before the first stage process starts: a SIGTERM while they start stops them gracefully
    # (unhandled, it would end this process and the kernel would kill them mid-batch).
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        _start(commands, envs, children, stopping)
        if stopping:
            stop(stopping[0], None)  # one started while the signal was handled has not been told yet
        log.info("hub worker: stages %s in processes %s", ", ".join(children),
                 ", ".join(str(c.pid) for c in children.values()))
        ended = _first_ended(children, stopping, poll_s)
        if ended is not None:
            log.error("hub worker: the %s stage process exited with status %s; stopping the others so the "
                      "worker restarts whole", *ended, extra={"stage": ended[0]})
            stop(signal.SIGTERM, None)
        codes = [_wait(child, grace_s) for child in children.values()]
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return _status(codes if ended is None else [ended[1], *codes])  # the stage that ended first says why


def _start(commands: Mapping[str, list[str]], envs: Mapping[str, dict[str, str]],
           children: dict[str, subprocess.Popen[bytes]], stopping: list[int]) -> None:
    """Each stage process, into `children` as it starts; no more once this process is told to stop."""
    die = _parent_death_signal()
    for name, command in commands.items():
        if stopping:
            return
        children[name] = subprocess.Popen(command, env=envs.get(name), cwd=PROJECT_ROOT, preexec_fn=die)


def _first_ended(children: Mapping[str, subprocess.Popen[bytes]], stopping: list[int],
                 poll_s: float) -> tuple[str, int] | None:
    """The first stage process to exit, its name and status; None once this process is told to stop."""
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                return name, child.returncode
        time.sleep(poll_s)
    return None


def _parent_death_signal() -> Callable[[], None] | None:
    """What each stage process runs between fork and exec to die with this one (Linux); libc is
    loaded here, in the parent, not in the child."""
    if sys.platform != "linux":
        return None
    return partial(_die_with_parent, ctypes.CDLL(None, use_errno=True), os.getpid())


def _status(codes: Sequence[int]) -> int:
    """The first failed stage's status (killed by a signal: 128 + its number), or 0."""
    failed = [code for code in codes if code not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if not failed:
        return 0
    return failed[0] if failed[0] > 0 else 128 - failed[0]


def _wait(child: subprocess.Popen[bytes], timeout_s: float) -> int:
    """A stage finishes its batch first; a batch may retry for the guard's budget before it gives up."""
    try:
        return child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait()
