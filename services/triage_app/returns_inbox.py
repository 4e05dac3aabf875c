"""Partner agencies' answers from their connectors (`mash.returns.v1`), recorded as the portal records
one: checked, decided by the sharing policy role by role, sealed. Runs in the app's background loop.

Every message ends in one outcome: recorded; a duplicate of the answer already recorded (nothing to
do); or dead-lettered with its reason (not an InformationReturn, no such request, a return from an
agency the request was not sent to, an answer already recorded that differs, the enquiry closed, an
answer that does not check). Offsets are committed only once each message's outcome is settled, so
a crash re-reads, and the duplicate check keeps a re-read from recording twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from mash import deadletter, metrics
from mash.codec import Codec
from mash.health import broker_answers
from mash.models import InformationRequestRecord
from services.enquiry.catalogue import Catalogue
from services.enquiry.returns import Return, ReturnRefused, checked_return
from services.sharing.policy import Policy
from services.triage_app import enquiries
from services.triage_app.actions import Conflict
from services.triage_app.enquiries import london_today

RETURN_SCHEMA = "uk.mash.hub.InformationReturn"
STAGE = "returns"
log = logging.getLogger(__name__)


class NotAReturn(ValueError):
    """A message on the returns topic that cannot be taken as an agency's answer; the reason says why."""


@dataclass(frozen=True)
class Settled:
    recorded: int = 0
    duplicates: int = 0
    dead_letters: int = 0


def record_message(sessions: sessionmaker[Session], codec: Codec, catalogue: Catalogue, policy: Policy,
                   value: bytes, now: datetime) -> str:
    """One message's outcome: "recorded" or "duplicate"; NotAReturn (to dead-letter) otherwise."""
    record = _decoded(codec, value)
    with sessions() as session:
        row = session.get(InformationRequestRecord, str(record["request_id"]))
        if row is None:
            raise NotAReturn(f"no information request {record['request_id']}")
        if row.agency != record["agency"]:
            raise NotAReturn(f"request {row.request_id} was sent to {row.agency}, not {record['agency']}")
        prompts, sent_at = enquiries.prompts_of(row), enquiries.aware(row.sent_at)
    try:
        answer = checked_return(record["answer"], prompts, record.get("answers") or {}, record.get("summary", ""),
                                record.get("declined_reason", ""), record.get("searched_on"),
                                record.get("systems_searched") or [], london_today(sent_at), london_today(now))
    except ReturnRefused as exc:
        raise NotAReturn(f"the answer does not check: {exc}") from None
    if row.answered_at is not None:
        if _same(row, answer):
            return "duplicate"
        raise NotAReturn(f"request {row.request_id} was already answered ({row.answer}) and this answer differs")
    try:
        enquiries.record_system_return(sessions, _who(str(record["answered_by"])) or record["agency"],
                                       row.agency, row.request_id, answer, catalogue, policy, now)
    except Conflict as exc:  # answered meanwhile (the portal, or this message read twice at once), or closed
        if _same_as_recorded(sessions, row.request_id, answer):
            return "duplicate"
        raise NotAReturn(str(exc)) from None
    return "recorded"


def _who(answered_by: str) -> str:
    """Who answered, as the agency's system names it: printable characters, at most 64."""
    return "".join(c for c in answered_by if c.isprintable()).strip()[:64]


def _decoded(codec: Codec, value: bytes) -> dict[str, Any]:
    try:
        writer = codec.writer_of(value)
        if writer.name != RETURN_SCHEMA:
            raise NotAReturn(f"{writer.name} does not belong on the returns topic")
        record, _ = codec.decode(value, reader_name=RETURN_SCHEMA)
    except NotAReturn:
        raise
    except Exception as exc:  # noqa: BLE001 - hostile bytes: say what they are not
        raise NotAReturn(f"not a readable InformationReturn ({type(exc).__name__}: {exc})") from None
    return record


def _same(row: InformationRequestRecord, answer: Return) -> bool:
    return (row.answer, row.answers or {}, row.summary or "", row.declined_reason or "", row.searched_on,
            tuple(row.systems_searched or ())) == (answer.answer, answer.answers, answer.summary,
                                                   answer.declined_reason, answer.searched_on, answer.systems_searched)


def _same_as_recorded(sessions: sessionmaker[Session], request_id: str, answer: Return) -> bool:
    with sessions() as session:
        row = session.get(InformationRequestRecord, request_id)
        return row is not None and _same(row, answer)


class ReturnsInbox:
    """Reads `mash.returns.v1` in the app's consumer group and settles each message."""

    def __init__(self, sessions: sessionmaker[Session], bootstrap: str, topic: str, deadletter_topic: str,
                 group: str, codec: Codec, catalogue: Catalogue, policy: Callable[[], Policy],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 client: Mapping[str, Any] | None = None) -> None:
        self._client = dict(client or {})  # the app's Kafka connection options (`mash.kafka_security`)
        self._sessions, self._bootstrap, self._topic = sessions, bootstrap, topic
        self._deadletter_topic, self._group, self._codec = deadletter_topic, group, codec
        self._catalogue, self._policy, self._clock = catalogue, policy, clock
        self._consumer: Any = None
        self._producer: Any = None

    def poll_once(self, timeout_ms: int = 1000) -> Settled:
        """Settle what one poll returns, then commit it. Raises on a broker or database outage (the
        caller tries again later; nothing was committed, so nothing is lost)."""
        if self._consumer is None and not broker_answers(self._bootstrap):
            return Settled()  # no broker yet: nothing to read, and no client left retrying in the log
        consumer = self._connect()
        batches = consumer.poll(timeout_ms=timeout_ms, max_records=500)
        recorded = duplicates = dead = 0
        for messages in batches.values():
            for message in messages:
                try:
                    outcome = record_message(self._sessions, self._codec, self._catalogue, self._policy(),
                                             message.value or b"", self._clock())
                except NotAReturn as exc:
                    self._dead_letter(message, exc)
                    dead += 1
                    continue
                recorded += outcome == "recorded"
                duplicates += outcome == "duplicate"
        if batches:
            if dead:
                self._producer.flush(timeout=30)
            consumer.commit()
        if dead:
            metrics.DEAD_LETTERS.labels(STAGE, metrics.reason_of("NotAReturn")).inc(dead)
        return Settled(recorded, duplicates, dead)

    def _dead_letter(self, message: Any, error: Exception) -> None:
        log.warning("return dead-lettered: %s", error)
        value, headers = deadletter.build(message.value or b"", deadletter.Origin(
            STAGE, message.topic, message.partition, message.offset, message.key), error, self._codec)
        self._producer.send(self._deadletter_topic, key=message.key, value=value, headers=headers)

    def _connect(self) -> Any:
        if self._consumer is None:
            from kafka import KafkaConsumer, KafkaProducer

            self._consumer = KafkaConsumer(self._topic, bootstrap_servers=self._bootstrap, group_id=self._group,
                                           enable_auto_commit=False, auto_offset_reset="earliest",
                                           client_id="mash-triage-app-returns", **self._client)
            self._producer = KafkaProducer(bootstrap_servers=self._bootstrap, acks="all",
                                           client_id="mash-triage-app-returns", **self._client)
        return self._consumer

    def close(self) -> None:
        for client in (self._consumer, self._producer):
            if client is not None:
                client.close()
        self._consumer = self._producer = None
