"""Running the hub over a feed, for fault tests and benchmarks: publish, start and kill workers, count.

Counts are by event id and by child, from the triage store: which events have no outcome yet,
which children have more than one open alert. A worker is a real `mash hub worker` process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from sqlalchemy import Engine, func, select

from mash.models import AlertRecord, EventOutcomeRecord
from mash.settings import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class FeedMessage:
    topic: str  # this deployment's topic name
    key: bytes
    value: bytes


def publish(bootstrap: str, messages: Iterable[FeedMessage], per_second: float | None = None,
            client: Mapping[str, Any] | None = None,
            progress: Callable[[int], None] | None = None) -> int:
    """Send every message (acks=all), paced at `per_second` when given; returns how many were sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024,
                             **(client or {}))
    started, sent = time.monotonic(), 0
    try:
        for message in messages:
            producer.send(message.topic, key=message.key, value=message.value)
            sent += 1
            if per_second:
                ahead = sent / per_second - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            if progress is not None and sent % 5000 == 0:
                progress(sent)
        producer.flush()
    finally:
        producer.close()
    return sent


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {**os.environ, "MASH_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
            "MASH_TOPIC_PREFIX": settings.topic_prefix, "MASH_APP_ID": settings.app_id,
            "MASH_STATE_DIR": str(settings.state_dir), "MASH_DATABASE_URL": settings.sqlalchemy_url(),
            "MASH_STAGE_RETRY_BUDGET_S": str(settings.stage_retry_budget_s), **extra}


@dataclass
class Workers:
    """Hub worker processes of one deployment; every one started is stopped by `stop_all`."""

    settings: Settings
    logs: Path
    stages: str = "enrichment,sharing,triage"
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"hub-{self.started}.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "mash.cli", "hub", "worker", "--loglevel", "info",
                                     "--stages", self.stages], env=worker_env(self.settings), cwd=PROJECT_ROOT,
                                    stdout=log, stderr=subprocess.STDOUT)
        self.started += 1
        self.running.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no clean shutdown, no leaving the group, nothing flushed."""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.running.remove(proc)

    def stop(self, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> int:
        """SIGTERM, as a supervisor stops a worker: it finishes its batch and leaves the group."""
        proc.terminate()
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        self.running.remove(proc)
        return code

    def exited(self) -> list[int]:
        return [p.returncode for p in self.running if p.poll() is not None]

    def stop_all(self) -> None:
        for proc in list(self.running):
            self.stop(proc)


@dataclass(frozen=True)
class Census:
    """What the triage store holds of a feed, counted by event id and by child."""

    events: int  # distinct inbound events expected
    with_outcome: int
    missing: tuple[str, ...]  # expected events without an outcome (first few)
    children_with_two_open_alerts: int
    open_alerts: int
    alerts: int

    @property
    def complete(self) -> bool:
        return self.with_outcome == self.events and not self.missing


def census(engine: Engine, event_ids: Sequence[str]) -> Census:
    expected = set(event_ids)
    with engine.connect() as db:
        recorded = set(db.scalars(select(EventOutcomeRecord.event_id)))
        open_per_person = db.execute(select(AlertRecord.person_id, func.count()).where(AlertRecord.status == "OPEN")
                                     .group_by(AlertRecord.person_id)).all()
        alerts = db.scalar(select(func.count()).select_from(AlertRecord)) or 0
    missing = sorted(expected - recorded)
    return Census(len(expected), len(expected & recorded), tuple(missing[:10]),
                  sum(1 for _, n in open_per_person if n > 1), sum(n for _, n in open_per_person), alerts)


def wait_until(condition: Callable[[], bool], timeout_s: float, stalled_after_s: float | None = None,
               progress: Callable[[], object] | None = None) -> bool:
    """Poll `condition`; False at the timeout, or once `progress()` has not changed for `stalled_after_s`."""
    deadline = time.monotonic() + timeout_s
    last, moved = progress() if progress else None, time.monotonic()
    while time.monotonic() < deadline:
        if condition():
            return True
        if progress is not None and stalled_after_s is not None:
            now = progress()
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > stalled_after_s:
                return False
        time.sleep(0.2)
    return False
