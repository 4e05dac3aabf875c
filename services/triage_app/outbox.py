"""What the triage app tells the hub and the partner agencies, sent from SQL: decisions (and enquiries'
threshold decisions) to `mash.decisions.v1`, answers to possible matches to `mash.match_answers.v1`,
information requests and the outcome fed back to a referrer to `mash.requests.<agency>.v1`, each
marked sent once the broker has it, and the app's audit chain to `mash.audit.v1`. A row that differs
from its sealed audit entry is not sent. Run after each action and every few seconds, so a broker
outage only delays, never loses.

An outage never holds up the person acting: when no broker answers, nothing is tried (the action is
recorded and answered at once), and a send in progress when the broker goes away gets the producer's
verdict within `DELIVERY_TIMEOUT_MS`. A message is marked sent only once acknowledged, and one not
acknowledged is given up by its producer before it is tried again, so it is never sent twice."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.codec import Codec
from mash.health import broker_answers
from mash.models import (
    AuditTopicCursorRow,
    EnquiryRecord,
    InformationRequestRecord,
    MatchReview,
    TriageDecisionRecord,
)
from mash.settings import get_settings
from services.enquiry.catalogue import Catalogue
from services.sharing import audit_store, audit_topic
from services.sharing.audit_keys import audit_keys
from services.sharing.audit_signing import AuditKeys
from services.triage_app import sealed_decisions, sealed_enquiries
from services.triage_app.enquiries import decision_id, request_message

DECISION_SCHEMA = "uk.mash.hub.TriageDecision"
ANSWER_SCHEMA = "uk.mash.hub.MatchAnswer"
REQUEST_SCHEMA = "uk.mash.hub.InformationRequest"
ENQUIRY_DECISION_SCHEMA = "uk.mash.hub.EnquiryDecision"
FEEDBACK_SCHEMA = "uk.mash.hub.ReferrerFeedback"
BATCH = 500
CONNECT_TIMEOUT_MS = 5_000  # finding the cluster, and waiting for a topic's metadata in send()
REQUEST_TIMEOUT_MS = 10_000
DELIVERY_TIMEOUT_MS = 15_000  # each message acknowledged, or failed and dropped, within this
log = logging.getLogger(__name__)
Row = TypeVar("Row", TriageDecisionRecord, MatchReview, InformationRequestRecord, EnquiryRecord)
Message = tuple[str, bytes]  # key, value


class Outbox:
    def __init__(self, sessions: sessionmaker[Session], bootstrap: str, decisions_topic: str, answers_topic: str,
                 codec: Codec, audit_topic: str | None = None, keys: AuditKeys | None = None,
                 requests_topic: Callable[[str], str] | None = None,
                 provision: Callable[[list[str]], object] | None = None, catalogue: Catalogue | None = None,
                 client: Mapping[str, Any] | None = None) -> None:
        """`requests_topic`: an agency's requests topic (its name as deployed); `provision`: creates the
        requests topics of the agencies named, if missing, before the first send to each; `client`: the
        app's Kafka connection options (`mash.kafka_security`)."""
        self._client = dict(client or {})
        self._requests_topic = requests_topic
        self._provision = provision
        self._provisioned: set[str] = set()
        self._catalogue = catalogue
        self._sessions = sessions
        self._bootstrap = bootstrap
        self._topics = (decisions_topic, answers_topic)
        self._audit_topic = audit_topic
        self._keys = keys
        self._codec = codec
        self._producer: Any = None
        self._lock = threading.Lock()

    def flush(self) -> int:
        """Send everything unsent; the number sent. Never raises: an outage is retried later."""
        with self._lock:
            try:
                return (self._send_audit() + self._send_decisions() + self._send_answers() + self._send_requests()
                        + self._send_enquiry_decisions() + self._send_feedback())
            except Exception as exc:  # noqa: BLE001 - safe in SQL; say so and retry later
                log.warning("not yet sent to Kafka (%s); retrying in the background", type(exc).__name__)
                self._disconnect()
                return 0

    def _send_decisions(self) -> int:
        with self._sessions.begin() as session:
            pending = session.scalars(select(TriageDecisionRecord).where(TriageDecisionRecord.published_at.is_(None),
                                                                         TriageDecisionRecord.send_error.is_(None))
                                      .order_by(TriageDecisionRecord.decided_at).limit(BATCH)).all()

            def encode(d: TriageDecisionRecord) -> Message:
                sealed_decisions.check(session, d, self._audit_keys())  # an edited row is never sent as decided
                return d.person_id, self._codec.encode({
                    "decision_id": d.decision_id, "alert_id": d.alert_id, "person_id": d.person_id,
                    "outcome": d.outcome, "rationale": d.rationale, "decided_by": d.decided_by,
                    "decided_role": d.decided_role, "rag_at_decision": d.rag_at_decision,
                    "decided_at": _aware(d.decided_at), "audit_ref": d.audit_ref,
                    "alert_revision": d.alert_revision}, DECISION_SCHEMA)

            encoded = self._encoded(pending, encode)
            acknowledged = self._send(self._topics[0], [message for _, message in encoded])
            now = datetime.now(UTC)
            for (d, _), sent in zip(encoded, acknowledged, strict=True):
                if sent:
                    d.published_at = now
            return sum(acknowledged)

    def _audit_keys(self) -> AuditKeys:
        if self._keys is None:
            self._keys = audit_keys(get_settings())
        return self._keys.for_writer("triage-app")

    def _send_audit(self) -> int:
        """The app's chain to the audit topic, in order, after what was published: its signed records
        there anchor it, so `mash audit verify` sees an entry later lost or changed in the database."""
        if self._audit_topic is None:
            return 0
        chain = sealed_decisions.AUDIT_CHAIN
        with self._sessions.begin() as session:
            cursor = session.get(AuditTopicCursorRow, chain, with_for_update=True)
            after = cursor.seq if cursor else 0
            if after > audit_store.head(session, chain).seq:  # moved past the chain: publish it again
                log.error("the audit topic cursor of %s (%d) is past the chain's head: it was moved; publishing "
                          "the chain again from the start (repeats are skipped by verify)", chain, after)
                metrics.AUDIT_UNTRUSTED.inc()
                after = 0
            entries = audit_store.read_chain_after(session, chain, after, BATCH)
            messages = [(chain, audit_topic.encoded(self._codec, e, e.decisions, check_types=True)) for e in entries]
            acknowledged = self._send(self._audit_topic, messages)
            published = next((n for n, sent in enumerate(acknowledged) if not sent), len(acknowledged))
            if published:  # the acknowledged run from the start: the rest go next time, in order
                if cursor is None:
                    session.add(AuditTopicCursorRow(chain=chain, seq=entries[published - 1].seq))
                else:
                    cursor.seq = entries[published - 1].seq
            return published

    def _send_answers(self) -> int:
        with self._sessions.begin() as session:
            pending = session.scalars(select(MatchReview).where(MatchReview.status != "OPEN",
                                                                MatchReview.answer_sent_at.is_(None),
                                                                MatchReview.send_error.is_(None))
                                      .order_by(MatchReview.answered_at).limit(BATCH)).all()
            encoded = self._encoded(pending, lambda r: (r.event_id, self._codec.encode({
                "review_event_id": r.event_id, "person_id": r.person_id,
                "candidate_person_id": r.candidate_person_id, "answer": r.status,
                "answered_by": r.answered_by or "", "answered_at": _aware(r.answered_at or datetime.now(UTC))},
                ANSWER_SCHEMA)))
            acknowledged = self._send(self._topics[1], [message for _, message in encoded])
            now = datetime.now(UTC)
            for (r, _), sent in zip(encoded, acknowledged, strict=True):
                if sent:
                    r.answer_sent_at = now
            return sum(acknowledged)

    def _send_requests(self) -> int:
        """Each information request to its agency's topic, once, checked against its sealed entry."""
        if self._requests_topic is None:
            return 0
        with self._sessions.begin() as session:
            pending = session.scalars(select(InformationRequestRecord).where(
                InformationRequestRecord.published_at.is_(None), InformationRequestRecord.send_error.is_(None))
                .order_by(InformationRequestRecord.sent_at).limit(BATCH)).all()
            enquiries = {e.enquiry_id: e for e in session.scalars(select(EnquiryRecord).where(
                EnquiryRecord.enquiry_id.in_({r.enquiry_id for r in pending})))} if pending else {}

            def encode(r: InformationRequestRecord) -> Message:
                sealed_enquiries.check_request(session, r, enquiries[r.enquiry_id], self._audit_keys())
                return r.request_id, self._codec.encode(request_message(r, enquiries[r.enquiry_id]), REQUEST_SCHEMA)

            return self._send_to_agencies(self._encoded(pending, encode), lambda r: r.agency,
                                          lambda r, now: setattr(r, "published_at", now))

    def _send_enquiry_decisions(self) -> int:
        """Each closed enquiry's threshold decision to the decisions topic, checked against its seal."""
        if self._requests_topic is None:
            return 0
        with self._sessions.begin() as session:
            pending = session.scalars(select(EnquiryRecord).where(
                EnquiryRecord.status == "CLOSED", EnquiryRecord.published_at.is_(None),
                EnquiryRecord.send_error.is_(None)).order_by(EnquiryRecord.decided_at).limit(BATCH)).all()

            def encode(e: EnquiryRecord) -> Message:
                sealed_enquiries.check_decision(session, e, decision_id(e.enquiry_id), self._audit_keys())
                return e.person_id, self._codec.encode({
                    "enquiry_id": e.enquiry_id, "alert_id": e.alert_id, "person_id": e.person_id,
                    "level": e.level, "outcome": e.outcome, "factors": list(e.factors or []),
                    "rationale": e.rationale or "", "decided_by": e.decided_by or "",
                    "decided_at": _aware(e.decided_at or datetime.now(UTC)), "audit_ref": e.decision_audit_ref or ""},
                    ENQUIRY_DECISION_SCHEMA)

            encoded = self._encoded(pending, encode)
            acknowledged = self._send(self._topics[0], [message for _, message in encoded])
            now = datetime.now(UTC)
            for (e, _), ok in zip(encoded, acknowledged, strict=True):
                if ok:
                    e.published_at = now
            return sum(acknowledged)

    def _send_feedback(self) -> int:
        """The outcome, and only the outcome and level, to the agency that referred the child."""
        if self._requests_topic is None:
            return 0
        with self._sessions.begin() as session:
            pending = session.scalars(select(EnquiryRecord).where(
                EnquiryRecord.status == "CLOSED", EnquiryRecord.referrer_agency.is_not(None),
                EnquiryRecord.feedback_published_at.is_(None), EnquiryRecord.send_error.is_(None))
                .order_by(EnquiryRecord.decided_at).limit(BATCH)).all()
            outcomes = self._catalogue.outcomes if self._catalogue else {}

            def encode(e: EnquiryRecord) -> Message:
                sealed_enquiries.check_decision(session, e, decision_id(e.enquiry_id), self._audit_keys())
                decided = _aware(e.decided_at or datetime.now(UTC))
                return e.enquiry_id, self._codec.encode({
                    "enquiry_id": e.enquiry_id, "agency": e.referrer_agency, "referral_event_id": e.referral_event_id,
                    "outcome": e.outcome, "outcome_text": outcomes.get(e.outcome or "", e.outcome or ""),
                    "level": e.level, "decided_at": decided,
                    "due_at": _aware(e.feedback_due_at or decided)}, FEEDBACK_SCHEMA)

            def told(e: EnquiryRecord, now: datetime) -> None:
                e.feedback_published_at = now
                late = e.feedback_due_at is not None and now > _aware(e.feedback_due_at)
                metrics.REFERRER_FEEDBACK.labels(e.referrer_agency, "late" if late else "on_time").inc()

            return self._send_to_agencies(self._encoded(pending, encode), lambda e: e.referrer_agency or "", told)

    def _send_to_agencies(self, encoded: list[tuple[Row, Message]], agency_of: Callable[[Row], str],
                          sent: Callable[[Row, datetime], None]) -> int:
        """Each agency's messages to its requests topic (made if missing); `sent` marks each acknowledged row."""
        assert self._requests_topic is not None
        agencies = {agency_of(row) for row, _ in encoded}
        self._ensure_topics(agencies)
        count = 0
        for agency in sorted(agencies):
            mine = [(row, message) for row, message in encoded if agency_of(row) == agency]
            acknowledged = self._send(self._requests_topic(agency), [message for _, message in mine])
            now = datetime.now(UTC)
            for (row, _), ok in zip(mine, acknowledged, strict=True):
                if ok:
                    sent(row, now)
            count += sum(acknowledged)
        return count

    def _ensure_topics(self, agencies: set[str]) -> None:
        missing = sorted(agencies - self._provisioned)
        if missing and self._provision is not None:
            self._provision(missing)
        self._provisioned |= set(missing)

    def _encoded(self, rows: Sequence[Row], encode: Callable[[Row], Message]) -> list[tuple[Row, Message]]:
        """The rows' messages. A row that cannot be encoded would be retried ahead of every later one
        for ever: its error is recorded on it (`send_error`, for an operator) in a transaction of its
        own, so a broker outage rolling back the send does not lose it, and the others go."""
        encoded, unsendable = [], []
        for row in rows:
            try:
                encoded.append((row, encode(row)))
            except Exception as exc:  # noqa: BLE001 - one bad row must not hold up the rest
                unsendable.append((row, f"{type(exc).__name__}: {exc}"[:2000]))
        if unsendable:
            with self._sessions.begin() as session:
                for row, error in unsendable:
                    session.merge(row).send_error = error
            for row, error in unsendable:
                row.send_error = error
                metrics.OUTBOX_UNSENDABLE.labels(type(row).__name__).inc()
                log.error("a %s can never be sent to Kafka (%s); recorded on the row, the others go on",
                          type(row).__name__, error.split(":", 1)[0])
        return encoded

    def _send(self, topic: str, messages: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Which of `messages` the broker acknowledged; the others stay unsent, to be sent again later."""
        if not messages:
            return []
        if not broker_answers(self._bootstrap):
            raise ConnectionError("no broker answers")  # at once, rather than after the client's timeouts
        producer = self._connect()
        futures = []
        try:
            for key, value in messages:
                futures.append(producer.send(topic, key=key.encode(), value=value))
        except Exception as exc:  # noqa: BLE001 - those not handed over are sent next time
            log.warning("Kafka took %d of %d (%s)", len(futures), len(messages), type(exc).__name__)
        producer.flush()  # every message handed over has its verdict: none is left to go out later
        acknowledged = [future.succeeded() for future in futures] + [False] * (len(messages) - len(futures))
        if not all(acknowledged):
            log.warning("%d of %d not acknowledged by Kafka; retrying in the background",
                        acknowledged.count(False), len(messages))
            self._disconnect()
        return acknowledged

    def _connect(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            # one request in flight: a retried message cannot overtake the next (the audit chain's order)
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all", retries=5,
                                           max_in_flight_requests_per_connection=1,
                                           client_id="mash-triage-app", max_block_ms=CONNECT_TIMEOUT_MS,
                                           bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                                           request_timeout_ms=REQUEST_TIMEOUT_MS,
                                           delivery_timeout_ms=DELIVERY_TIMEOUT_MS, **self._client)
        return self._producer

    def _disconnect(self) -> None:
        """Close the producer (it holds no message: each was acknowledged or given up); a new one next time."""
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=5)
            except Exception as exc:  # noqa: BLE001 - it is being dropped either way
                log.warning("closing the Kafka producer failed (%s)", type(exc).__name__)

    def kafka_answers(self) -> bool:
        return broker_answers(self._bootstrap)

    def close(self) -> None:
        with self._lock:
            self._disconnect()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
