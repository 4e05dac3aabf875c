"""The hub's metrics, read from what each batch took in and sent out: topics and message headers.

This is the hook the agents call after a batch; the stages and their decision functions know
nothing of metrics. The facts come from the headers stages put on their output for operators
(`mash.outcome`, `mash.rag`, `mash.sharing`, ...), whose values are closed lists, and each label
value is checked against its list again here, so no text from an event can become a label.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from mash import metrics
from mash.metrics import AGENCY_NAMES, ALERT_CHANGES, LINK_METHODS, OUTCOME_NAMES, RAGS, SHARING_OUTCOMES, labelled
from mash.topics import AGENCIES, ALERTS, DEADLETTER, ENRICHED, OUTCOMES, SHARED, inbound
from services.messages import InMessage, OutMessage

log = logging.getLogger("mash.hub")
ALERTING = frozenset(("ALERT_RAISED", "ATTACHED_TO_ALERT"))


class HubObserver:
    def __init__(self, topic_prefix: str, roles: Sequence[str]) -> None:
        self._prefix = topic_prefix
        self._roles = tuple(roles)
        self._inbound = {inbound(a): a.upper() for a in AGENCIES}

    def batch(self, stage: str, inputs: Sequence[InMessage], outputs: Sequence[OutMessage], seconds: float) -> None:
        metrics.STAGE_BATCH_SECONDS.labels(stage).observe(seconds)
        now = time.time()
        topics: dict[str, int] = {}
        for received in inputs:
            topics[received.topic] = topics.get(received.topic, 0) + 1
        for topic, n in topics.items():
            name = topic.removeprefix(self._prefix)
            metrics.STAGE_MESSAGES_IN.labels(stage, name).inc(n)
            if name in self._inbound:
                metrics.LAST_EVENT.labels(self._inbound[name]).set(now)
        for message in outputs:
            metrics.STAGE_MESSAGES_OUT.labels(stage, message.topic).inc()
            self._facts(message, now)

    def failure(self, stage: str, error: BaseException) -> None:
        metrics.STAGE_FAILURES.labels(stage).inc()

    def _facts(self, message: OutMessage, now: float) -> None:
        headers = {k: v.decode("utf-8", "replace") for k, v in message.headers}
        if message.topic == OUTCOMES and headers.get("mash.duplicate") != "true":
            agency = labelled(headers.get("mash.agency"), AGENCY_NAMES)
            outcome = labelled(headers.get("mash.outcome"), OUTCOME_NAMES)
            metrics.EVENT_OUTCOMES.labels(agency, outcome).inc()
            if outcome in ALERTING:  # a line per event that joins an alert; ids and classes only
                log.info("event %s", outcome.lower().replace("_", " "),
                         extra={"stage": "triage", "event_id": (message.key or b"").decode(), "agency": agency})
                metrics.END_TO_END_SECONDS.labels(agency).observe(max(0.0, now - _s(headers.get("mash.received_ms"))))
                metrics.OCCURRED_TO_ALERT_SECONDS.labels(agency).observe(
                    max(0.0, now - _s(headers.get("mash.occurred_ms"))))
        elif message.topic == ALERTS:
            metrics.ALERT_REVISIONS.labels(labelled(headers.get("mash.rag"), RAGS),
                                           labelled(headers.get("mash.change"), ALERT_CHANGES)).inc()
        elif message.topic == ENRICHED and "mash.link_method" in headers:
            metrics.LINK_DECISIONS.labels(labelled(headers["mash.link_method"], LINK_METHODS),
                                          labelled(headers.get("mash.held_for_review"), ("true", "false"))).inc()
        elif message.topic == SHARED and "mash.sharing" in headers:
            for pair in headers["mash.sharing"].split(";"):
                role, _, outcome = pair.partition("=")
                metrics.SHARING_DECISIONS.labels(labelled(role, self._roles),
                                                 labelled(outcome, SHARING_OUTCOMES)).inc()
        elif message.topic == DEADLETTER:
            stage, reason = labelled(headers.get("mash.dlq.stage"), _STAGES), metrics.reason_of(
                headers.get("mash.dlq.error_class"))
            metrics.DEAD_LETTERS.labels(stage, reason).inc()
            log.warning("dead-lettered a message (%s); its reason is in the dead letter's headers", reason,
                        extra={"stage": stage, "topic": headers.get("mash.dlq.original_topic", "")})


_STAGES = ("hub:enrichment", "hub:sharing", "hub:triage", "hub:triage_store")


def _s(ms: str | None) -> float:
    try:
        return int(ms or "0") / 1000
    except ValueError:
        return 0.0
