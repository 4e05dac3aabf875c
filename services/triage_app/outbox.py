"""Decisions recorded in the store, sent to `mash.decisions.v1` and marked sent once the broker
has them. Run after each decision and every few seconds, so a broker outage only delays."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import TriageDecisionRecord

DECISION_SCHEMA = "uk.mash.hub.TriageDecision"
log = logging.getLogger(__name__)


class DecisionOutbox:
    def __init__(self, sessions: sessionmaker[Session], bootstrap: str, topic: str, codec: Codec) -> None:
        self._sessions = sessions
        self._bootstrap = bootstrap
        self._topic = topic
        self._codec = codec
        self._producer: object | None = None
        self._lock = threading.Lock()

    def flush(self) -> int:
        """Send every unsent decision; the number sent. Never raises: an outage is retried later."""
        with self._lock:
            try:
                return self._flush()
            except Exception as exc:  # noqa: BLE001 - the decision is safe in SQL; say so and retry later
                log.warning("decisions not yet sent to Kafka (%s); retrying in the background", type(exc).__name__)
                self._producer = None
                return 0

    def _flush(self) -> int:
        with self._sessions.begin() as session:
            pending = session.scalars(select(TriageDecisionRecord).where(TriageDecisionRecord.published_at.is_(None))
                                      .order_by(TriageDecisionRecord.decided_at).limit(500)).all()
            if not pending:
                return 0
            producer = self._connect()
            futures = [producer.send(self._topic, key=d.person_id.encode(), value=self._encode(d))  # type: ignore[attr-defined]
                       for d in pending]
            for future in futures:
                future.get(timeout=10)
            now = datetime.now(UTC)
            for d in pending:
                d.published_at = now
            return len(pending)

    def _encode(self, d: TriageDecisionRecord) -> bytes:
        return self._codec.encode({
            "decision_id": d.decision_id, "alert_id": d.alert_id, "person_id": d.person_id, "outcome": d.outcome,
            "rationale": d.rationale, "decided_by": d.decided_by, "decided_role": d.decided_role,
            "rag_at_decision": d.rag_at_decision, "decided_at": _aware(d.decided_at), "audit_ref": d.audit_ref,
        }, DECISION_SCHEMA)

    def _connect(self) -> object:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all", retries=5,
                                           client_id="mash-triage-app", max_block_ms=5000)
        return self._producer

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)  # type: ignore[attr-defined]
                self._producer = None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
