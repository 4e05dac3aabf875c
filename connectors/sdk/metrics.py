"""A connector's metrics, through the runner's observer hook: records published and dead-lettered
(by error class), resends after broker errors, and when the broker last confirmed a record."""

from __future__ import annotations

import time
from collections.abc import Sequence

from connectors.sdk.contract import Connector
from connectors.sdk.runner import Outcome
from mash import metrics


class ConnectorMetrics:
    def confirmed(self, connector: Connector, outcomes: Sequence[Outcome]) -> None:
        agency = connector.name
        published = sum(1 for o in outcomes if o.error is None)
        if published:
            metrics.CONNECTOR_RECORDS.labels(agency, "published").inc(published)
            metrics.CONNECTOR_LAST_PUBLISHED.labels(agency).set(time.time())
        if len(outcomes) > published:
            metrics.CONNECTOR_RECORDS.labels(agency, "dead_lettered").inc(len(outcomes) - published)
            for outcome in outcomes:
                if outcome.error is not None:
                    metrics.CONNECTOR_DEAD_LETTERS.labels(agency, metrics.reason_of(type(outcome.error).__name__)).inc()

    def resending(self, connector: Connector, error: BaseException) -> None:
        metrics.CONNECTOR_RETRIES.labels(connector.name).inc()
