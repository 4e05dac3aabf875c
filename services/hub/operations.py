"""What operators get from a hub worker: /metrics, /healthz and /readyz, consumer lag sampled
from the broker, and the person index's size, all beside the stages rather than inside them."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.consumer_lag import group_lag
from mash.health import broker_answers, database_answers
from mash.metrics import MetricsServer
from mash.models import Person
from mash.settings import Settings
from mash.topics import AGENCIES, ALERTS, DECISIONS, ENRICHED, MATCH_ANSWERS, OUTCOMES, SHARED, inbound, topic_name

LAG_EVERY_S = 10.0
PERSONS_EVERY_S = 30.0
HUB_INPUTS = (*(inbound(a) for a in AGENCIES), MATCH_ANSWERS, ENRICHED, SHARED, DECISIONS, ALERTS, OUTCOMES)


class LagSampler:
    """Every few seconds, the group's lag per input partition, as a gauge."""

    def __init__(self, bootstrap: str, group: str, topics: Sequence[str]) -> None:
        self._bootstrap, self._group, self._topics = bootstrap, group, list(topics)
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name="lag-sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                lag = group_lag(self._bootstrap, self._group, self._topics)
                if lag is not None:
                    for (topic, partition), behind in lag.items():
                        metrics.CONSUMER_LAG.labels(self._group, topic, str(partition)).set(behind)
            except Exception:  # noqa: BLE001 - the broker is away (/readyz says so): try again later
                pass
            self._stop.wait(LAG_EVERY_S)


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


def start(settings: Settings, bootstrap: str, sessions: sessionmaker[Session]) -> tuple[MetricsServer, LagSampler]:
    lag = LagSampler(bootstrap, settings.app_id, [topic_name(t, settings) for t in HUB_INPUTS])
    metrics.PERSONS.set_function(PersonCount(sessions))
    server = MetricsServer("hub", settings.metrics_host, settings.metrics_port,
                           lambda: {"kafka": broker_answers(bootstrap), "database": database_answers(sessions)},
                           settings.state_dir / "metrics-targets")
    return server, lag
