"""What operators get from a hub worker: /metrics, /healthz and /readyz, consumer lag sampled
from the broker, each stage's progress (a stage holding work that does not move is not ready),
and the person index's size, all beside the stages rather than inside them."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.consumer_lag import group_lag
from mash.health import broker_answers, database_answers
from mash.kafka_security import HUB, kafka_python_options
from mash.metrics import MetricsServer
from mash.models import Person
from mash.settings import Settings
from mash.topics import HUB_STAGE_INPUTS, stage_group, topic_name
from services.hub.stage_loop import StageLoop

LAG_EVERY_S = 10.0
PERSONS_EVERY_S = 30.0


class LagSampler:
    """Every few seconds, each stage group's lag per input partition, as a gauge."""

    def __init__(self, bootstrap: str, groups: Mapping[str, Sequence[str]],
                 client: Mapping[str, Any] | None = None) -> None:
        self._bootstrap, self._groups, self._client = bootstrap, groups, client
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name="lag-sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for group, topics in self._groups.items():
                try:
                    lag = group_lag(self._bootstrap, group, list(topics), client=self._client)
                    if lag is not None:
                        for (topic, partition), behind in lag.items():
                            metrics.CONSUMER_LAG.labels(group, topic, str(partition)).set(behind)
                except Exception:  # noqa: BLE001 - the broker is away (/readyz says so): try again later
                    pass
            self._stop.wait(LAG_EVERY_S)


def stage_checks(loops: Sequence[StageLoop], stall_after_s: float) -> dict[str, bool]:
    """Each stage is ready unless it holds work and has committed nothing for `stall_after_s`;
    the same facts go to the stage metrics, so a Prometheus rule sees what /readyz says."""
    checks = {}
    for loop in loops:
        progress = loop.progress
        stalled = progress.stalled(stall_after_s)
        metrics.STAGE_STALLED.labels(loop.stage).set(1 if stalled else 0)
        metrics.STAGE_PENDING.labels(loop.stage).set(progress.pending)
        metrics.STAGE_LAST_PROGRESS.labels(loop.stage).set(time.time() - (time.monotonic() - progress.last_progress))
        checks[f"stage:{loop.stage}"] = not stalled
    return checks


class PersonCount:
    """The person index's size, counted at most every PERSONS_EVERY_S (a scrape must stay cheap)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._value, self._at = 0.0, 0.0

    def __call__(self) -> float:
        if time.monotonic() - self._at > PERSONS_EVERY_S:
            with self._sessions() as session:
                self._value = float(session.scalar(select(func.count()).select_from(Person)
                                                   .where(Person.merged_into.is_(None))) or 0)
            self._at = time.monotonic()
        return self._value


def start(settings: Settings, bootstrap: str, sessions: sessionmaker[Session],
          loops: Sequence[StageLoop]) -> tuple[MetricsServer, LagSampler]:
    groups = {stage_group(loop.stage, settings): [topic_name(t, settings) for t in HUB_STAGE_INPUTS[loop.stage]]
              for loop in loops}
    lag = LagSampler(bootstrap, groups, kafka_python_options(settings, HUB))
    metrics.PERSONS.set_function(PersonCount(sessions))
    stages = [loop.stage for loop in loops]
    name = "hub" if len(stages) != 1 else f"hub-{stages[0]}"  # a worker's stage processes each announce themselves
    server = MetricsServer(name, settings.metrics_host, settings.metrics_port,
                           lambda: {"kafka": broker_answers(bootstrap), "database": database_answers(sessions),
                                    **stage_checks(loops, settings.stage_stall_after_s)},
                           settings.state_dir / "metrics-targets")
    return server, lag
