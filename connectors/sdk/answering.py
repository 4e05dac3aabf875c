"""Answer the MASH's information requests from the agency's own system: read the agency's
`mash.requests.<agency>.v1`, ask the connector what its source holds about each request's subjects,
and put the answer on `mash.returns.v1` (the MASH checks it, decides with the sharing policy who
reads it, and seals it).

The connector writes only `answer(request)`: a `Draft` (held, nil return or declined, with what it
holds against the request's prompts and the systems searched), or None to leave the request to a
person in the partner portal. The SDK does the rest: decoding, keying, acknowledged sends, offsets
committed only after the answer is on the broker (a crash re-reads, and the MASH takes a repeated
answer as the duplicate it is), dead letters for what it cannot read. Outcomes fed back to the agency
on the same topic (ReferrerFeedback) are counted and passed to `feedback`, never answered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from mash import deadletter
from mash.codec import Codec

REQUEST_SCHEMA = "uk.mash.hub.InformationRequest"
FEEDBACK_SCHEMA = "uk.mash.hub.ReferrerFeedback"
RETURN_SCHEMA = "uk.mash.hub.InformationReturn"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    answer: str  # HELD | NIL | DECLINED
    answers: dict[str, str] = field(default_factory=dict)  # prompt id -> what is held
    systems_searched: tuple[str, ...] = ()
    summary: str = ""
    declined_reason: str = ""


@dataclass
class AnswerReport:
    answered: int = 0
    left_to_portal: int = 0
    feedback: int = 0
    dead_letters: int = 0


def return_record(agency: str, request: dict[str, Any], draft: Draft, answered_by: str,
                  now: datetime) -> dict[str, Any]:
    """The InformationReturn for a draft answer (pure)."""
    searched: date | None = now.date() if draft.answer != "DECLINED" or draft.systems_searched else None
    return {"request_id": request["request_id"], "agency": agency, "answer": draft.answer,
            "answers": dict(draft.answers), "summary": draft.summary, "declined_reason": draft.declined_reason,
            "searched_on": searched, "systems_searched": list(draft.systems_searched), "answered_by": answered_by,
            "answered_at": now}


class SourceUnavailable(Exception):
    """The agency's system did not answer (its database down, a connection refused): the request is
    read again later, never dead-lettered."""


def _outage(exc: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class RequestAnswerer:
    def __init__(self, bootstrap: str, agency: str, requests_topic: str, returns_topic: str, deadletter_topic: str,
                 group: str, answer: Callable[[dict[str, Any]], Draft | None], answered_by: str,
                 feedback: Callable[[dict[str, Any]], None] = lambda _: None, codec: Codec | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 client: Mapping[str, Any] | None = None) -> None:
        self._client = dict(client or {})  # the connector's Kafka connection options (`mash.kafka_security`)
        self.agency, self._answer, self._answered_by, self._feedback = agency, answer, answered_by, feedback
        self._topics = (requests_topic, returns_topic, deadletter_topic)
        self._bootstrap, self._group, self._codec, self._clock = bootstrap, group, codec or Codec(), clock
        self._consumer: Any = None
        self._producer: Any = None
        self.report = AnswerReport()

    def poll_once(self, timeout_ms: int = 1000) -> AnswerReport:
        """Answer what one poll returns; commit once every answer and dead letter is acknowledged. If the
        agency's system is down, nothing is committed, the batch is read again from its start next time
        (answers already sent are then repeats, which the MASH takes as duplicates), and the outage is
        raised for the caller to wait and try again."""
        consumer = self._connect()
        batches = consumer.poll(timeout_ms=timeout_ms, max_records=200)
        futures = []
        try:
            for messages in batches.values():
                for message in messages:
                    futures += self._handle(message)
        except SourceUnavailable:
            for tp, messages in batches.items():
                if messages:
                    consumer.seek(tp, messages[0].offset)
            raise
        for future in futures:
            future.get(timeout=30)  # an unacknowledged send raises: nothing is committed, all is re-read
        if batches:
            consumer.commit()
        return self.report

    def _handle(self, message: Any) -> list[Any]:
        requests_topic, returns_topic, deadletter_topic = self._topics
        try:
            record, writer = self._codec.decode(message.value or b"")
            if writer.name == FEEDBACK_SCHEMA:
                self.report.feedback += 1
                self._feedback(record)
                return []
            if writer.name != REQUEST_SCHEMA:
                raise ValueError(f"{writer.name} does not belong on {requests_topic}")
            try:
                draft = self._answer(record)
            except Exception as exc:
                if _outage(exc):
                    raise SourceUnavailable(f"the {self.agency} system did not answer: {type(exc).__name__}") from exc
                raise
            if draft is None:
                self.report.left_to_portal += 1
                return []
            value = self._codec.encode(return_record(self.agency, record, draft, self._answered_by, self._clock()),
                                       RETURN_SCHEMA)
        except SourceUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one request it cannot read or answer must not stop the rest
            self.report.dead_letters += 1
            log.warning("information request dead-lettered: %s", exc)
            value, headers = deadletter.build(message.value or b"", deadletter.Origin(
                f"answer.{self.agency}", message.topic, message.partition, message.offset, message.key), exc,
                self._codec)
            return [self._producer.send(deadletter_topic, key=message.key, value=value, headers=headers)]
        self.report.answered += 1
        return [self._producer.send(returns_topic, key=str(record["request_id"]).encode(), value=value)]

    def _connect(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer, KafkaProducer

            self._consumer = KafkaConsumer(self._topics[0], bootstrap_servers=self._bootstrap, group_id=self._group,
                                           enable_auto_commit=False, auto_offset_reset="earliest",
                                           client_id=f"mash-answer-{self.agency}", **self._client)
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all", enable_idempotence=True,
                                           client_id=f"mash-answer-{self.agency}", **self._client)
        return self._consumer

    def assigned(self) -> bool:
        """Whether the consumer group has given it partitions yet (before that, a poll finds nothing)."""
        return self._consumer is not None and bool(self._consumer.assignment())

    def close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                client.close()
        self._consumer = self._producer = None
