"""Runs a connector: read from its source, map, encode, key, produce, confirm, checkpoint.

Every record read ends in exactly one place: its agency's inbound topic or the dead-letter
topic, and the report counts both, so `read == produced + dead_lettered` always holds. A
checkpoint is saved only after the broker has acknowledged every record before it, so a
restarted connector neither skips a record nor (outside the last unconfirmed batch, whose
event ids the hub recognises) sends one twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from connectors.sdk.contract import Connector, MappingError
from connectors.sdk.offsets import OffsetStore
from connectors.sdk.sources.base import Source, SourceRecord, StreamEnd
from mash import deadletter
from mash.codec import Codec
from mash.settings import Settings
from mash.topics import DEADLETTER, topic_name

DELIVERY_TIMEOUT_S = 60.0
RETRY_BUDGET_S = 300.0


@dataclass
class RunReport:
    connector: str
    read: int = 0
    produced: int = 0
    dead_lettered: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"connector": self.connector, "read": self.read, "produced": self.produced,
                "dead_lettered": self.dead_lettered, "errors": dict(self.errors)}


@dataclass(frozen=True)
class Outcome:
    """The fate of one source record before it is sent: an event, or a dead letter."""

    record: SourceRecord
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    error: Exception | None


class TrackedFields(dict[str, Any]):
    """A record's fields that remember which ones the mapping read, to find unknown ones."""

    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def make_producer(bootstrap: str, client: Mapping[str, Any] | None = None) -> KafkaProducer:
    """Durable, ordered, idempotent: acks from every in-sync replica and no duplicate on retry.
    `client`: the connector's Kafka connection options (`mash.kafka_security`)."""
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024,
        client_id="mash-connector",
        **(client or {}),
    )


def prepare(connector: Connector, record: SourceRecord, codec: Codec) -> Outcome:
    """Turn one source record into the message to send; the pure half of a run."""
    try:
        if record.error is not None:
            raise record.error
        assert record.fields is not None
        fields = TrackedFields(record.fields)
        event = connector.to_event(connector.map(fields), scope=connector.record_scope(record))
        unknown = sorted(set(fields) - fields.read - connector.ignored_fields)
        if unknown:
            raise MappingError(f"unknown field(s) {', '.join(map(repr, unknown))[:500]}: not in the "
                               f"{connector.name} mapping; map them or list them in ignored_fields")
        value = codec.encode(event, connector.schema)
    except Exception as exc:  # noqa: BLE001 - any failure of one record dead-letters it
        origin = deadletter.Origin(stage=f"connector:{connector.name}", position=record.label)
        dl_value, headers = deadletter.build(record.raw, origin, exc, codec)
        return Outcome(record, None, dl_value, headers, exc)
    key = event["envelope"]["subject"]["local_id"].encode()
    return Outcome(record, key, value, [], None)


def prepare_all(connector: Connector, records: Iterable[SourceRecord], codec: Codec) -> Iterator[Outcome]:
    for record in records:
        yield prepare(connector, record, codec)


class RunObserver(Protocol):
    """The SDK's hook for metrics and the like: told what each confirmed batch held, and each resend."""

    def confirmed(self, connector: Connector, outcomes: Sequence[Outcome]) -> None: ...

    def resending(self, connector: Connector, error: BaseException) -> None: ...


class Runner:
    """Sends prepared records as they come and checkpoints each confirmed batch."""

    def __init__(self, connector: Connector, producer: KafkaProducer, offsets: OffsetStore, settings: Settings,
                 codec: Codec | None = None, progress: Callable[[RunReport], None] | None = None,
                 observer: RunObserver | None = None) -> None:
        self.observer = observer
        self.connector = connector
        self.producer = producer
        self.offsets = offsets
        self.codec = codec or Codec()
        self.progress = progress
        self.report = RunReport(connector.name)
        self.inbound = topic_name(connector.topic, settings)
        self.dlq = topic_name(DEADLETTER, settings)
        self._batch: list[Outcome] = []
        self._futures: list[Any] = []
        self._positions: dict[str, dict[str, Any]] = {}
        self._ends: list[StreamEnd] = []
        self._failures: dict[str, list[tuple[str, str]]] = {}
        self._rate_started = time.monotonic()

    def run(self, source: Source) -> RunReport:
        checkpoints = self.offsets.load() if source.keeps_checkpoints else {}
        for item in source.items(checkpoints):
            if isinstance(item, SourceRecord):
                self._add(prepare(self.connector, item, self.codec))
                if len(self._batch) >= self.connector.config.batch_size:
                    self.commit(source)
            elif isinstance(item, StreamEnd):
                self._positions[item.stream] = item.position
                self._ends.append(item)
                self.commit(source)
            else:  # Idle: nothing to read for now, so confirm what was sent
                self.commit(source)
        self.commit(source)
        return self.report

    def _add(self, outcome: Outcome) -> None:
        self._throttle()
        self.report.read += 1
        if outcome.error is None:
            self.report.produced += 1
        else:
            self.report.dead_lettered += 1
            self.report.errors[type(outcome.error).__name__] += 1
            reason = f"{type(outcome.error).__name__}: {str(outcome.error)[:500]}"
            self._failures.setdefault(outcome.record.stream, []).append((outcome.record.label, reason))
        self._batch.append(outcome)
        self._futures.append(self._send(outcome))
        self._positions[outcome.record.stream] = outcome.record.position

    def commit(self, source: Source) -> None:
        """Wait for the broker to confirm the batch, then save the checkpoint and acknowledge."""
        if self._batch:
            self._confirm()
            if self.observer:
                self.observer.confirmed(self.connector, self._batch)
        if source.keeps_checkpoints:
            self.offsets.save(self._positions)
        for end in self._ends:
            source.acknowledge(end, self._failures.pop(end.stream, []))
        self._batch, self._futures, self._positions, self._ends = [], [], {}, []
        if self.progress:
            self.progress(self.report)

    def _confirm(self) -> None:
        """Every send of the batch acknowledged; on a broker error, resend it with backoff."""
        delay, waited = 0.5, 0.0
        while True:
            try:
                self.producer.flush(timeout=DELIVERY_TIMEOUT_S)
                for future in self._futures:
                    future.get(timeout=DELIVERY_TIMEOUT_S)
                return
            except KafkaError as exc:
                if self.observer:
                    self.observer.resending(self.connector, exc)
                if waited >= RETRY_BUDGET_S:
                    raise
                print(f"\n{self.connector.name}: broker error ({type(exc).__name__}: {exc}); "
                      f"resending the batch in {delay:.1f} s", flush=True)
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 30.0)
                self._futures = [self._send(o) for o in self._batch]

    def _send(self, outcome: Outcome) -> Any:
        if outcome.error is None:
            return self.producer.send(self.inbound, key=outcome.key, value=outcome.value)
        return self.producer.send(self.dlq, value=outcome.value, headers=outcome.headers)

    def _throttle(self) -> None:
        rate = self.connector.config.max_rate
        if rate > 0:
            due = self._rate_started + self.report.read / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
