"""The hub's Faust application: enrichment → sharing → triage → triage store, over Kafka.

Agents are thin: they turn Faust events into plain messages, call a stage, and send what the
stage returns, waiting for the broker's acknowledgement before the input is acknowledged (so a
crash re-delivers rather than loses; stages are idempotent on event_id).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import faust
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.codec import Codec
from mash.db import engine_for, session_factory
from mash.settings import Settings
from mash.topics import (
    AGENCIES,
    ALERTS,
    AUDIT,
    DEADLETTER,
    DECISIONS,
    ENRICHED,
    MATCH_ANSWERS,
    OUTCOMES,
    SHARED,
    inbound,
    topic_name,
)
from services.enrichment.match_model import load_model
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import Enricher
from services.hub import faust_seek
from services.hub.guard import guarded
from services.hub.observe import HubObserver
from services.messages import InMessage, OutMessage
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.sharing.vocabulary import ROLES
from services.triage.correlation import PersonState, Rules
from services.triage.profiles import load_profile
from services.triage.scoring_file import load_scoring
from services.triage.stage import Triage
from services.triage_store.stage import StoreSink
from services.triage_store.store import TriageStore

T = TypeVar("T")
BATCH_SIZE = 1000
BATCH_WITHIN_S = 0.3
GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Collect garbage less often than Python's default (every 700 allocations).

    A stage decodes a thousand events per batch into a few hundred thousand short-lived
    objects; with the default thresholds the collector runs hundreds of times a batch and costs
    about a third of the sharing stage's time (measured). The objects are freed by reference
    counting anyway; the collector is only for cycles. Startup objects are frozen out of it.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass
class Hub:
    """What every agent needs: the app, its settings, the codec, the database, the outputs."""

    app: faust.App
    settings: Settings
    codec: Codec
    sessions: sessionmaker[Session]
    outputs: dict[str, str]  # catalogue name -> this deployment's topic name
    observer: HubObserver

    def topic(self, *names: str) -> Any:
        return self.app.topic(*(topic_name(n, self.settings) for n in names),
                              key_serializer="raw", value_serializer="raw")

    async def emit(self, messages: Sequence[OutMessage]) -> None:
        # Straight to the app's producer: Faust's Topic.send adds a future, a sensor call and a
        # log line per message, which costs more than the stage's own work in a passthrough.
        producer = self.app.producer
        pending = [await producer.send(self.outputs[m.topic], m.key, m.value, partition=None, timestamp=None,
                                       headers=m.headers or None) for m in messages]
        await asyncio.gather(*pending)  # delivered before the input is acknowledged

    async def run_batch(self, stage: str, process: Callable[[list[InMessage]], list[OutMessage]],
                        events: Sequence[Any]) -> None:
        batch = [_in_message(e) for e in events]
        started = time.perf_counter()

        async def attempt() -> list[OutMessage]:
            out = await asyncio.to_thread(process, batch)
            await self.emit(out)
            return out

        out = await self.guarded(stage, attempt)
        self.observer.batch(stage, batch, out, time.perf_counter() - started)

    async def guarded(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await guarded(stage, attempt, self.settings.stage_retry_budget_s, on_failure=self.observer.failure)


def build_app(settings: Settings, bootstrap: str,
              stages: Sequence[str] = ("enrichment", "sharing", "triage", "triage-store")) -> faust.App:
    """The hub's app with the chosen stages: all by default; fewer to scale or measure one alone."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    hub = make_hub(settings, bootstrap)
    for stage in stages:
        STAGES[stage](hub)
    metrics.initialise_hub(tuple(stages), tuple(ROLES))
    return hub.app


def make_hub(settings: Settings, bootstrap: str) -> Hub:
    faust_seek.install()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A batch of outputs goes out in a few produce requests, not one request per message.
        producer_linger=0.01,
        producer_max_batch_size=256 * 1024,
        broker_commit_interval=1.0,
        # A worker that dies without leaving the group holds its partitions until its session
        # times out; keep that short so a restarted worker takes over within seconds.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        web_enabled=False,
        datadir=str(settings.state_dir / "faust"),  # not the working directory
    )
    hub = Hub(app, settings, Codec(), session_factory(engine_for(settings)), {},
              HubObserver(settings.topic_prefix, tuple(ROLES)))
    hub.outputs = {name: topic_name(name, settings)
                   for name in (ENRICHED, SHARED, AUDIT, ALERTS, OUTCOMES, DEADLETTER)}
    return hub


def _enrichment(hub: Hub) -> None:
    enricher = Enricher(hub.codec, PersonIndex(hub.sessions, load_model(hub.settings.match_model)))

    # Answers to possible matches come to the same agent: only enrichment writes the person index.
    @hub.app.agent(hub.topic(*(inbound(a) for a in AGENCIES), MATCH_ANSWERS), name="enrichment")
    async def enrichment(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            await hub.run_batch("enrichment", enricher.process, events)


def _sharing(hub: Hub) -> None:
    sharer = Sharer(hub.codec, hub.sessions, PolicySource(hub.settings.sharing_policy))

    @hub.app.agent(hub.topic(ENRICHED), name="sharing")
    async def sharing(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            await hub.run_batch("sharing", sharer.process, events)


def _triage(hub: Hub) -> None:
    triage = Triage(hub.codec, Rules(load_scoring(hub.settings.triage_scoring),
                                     load_profile(hub.settings.triage_profile)))
    # Keyed by person id (str); Faust writes keys and values of its changelog as JSON.
    states = hub.app.Table("triage-state", default=None, partitions=hub.settings.topic_partitions)

    def step(message: InMessage) -> list[OutMessage]:
        try:
            name = hub.codec.writer_of(message.value).name
            record, writer = hub.codec.decode(message.value, reader_name=name)  # the latest version of it
            key = triage.state_key(record, writer.name)
        except Exception as exc:  # noqa: BLE001 - dead-letter and go on
            return [triage.dead_letter(message, exc)]
        new_state, out = triage.handle(PersonState.from_json(states.get(key)), record, writer.name,
                                       int(time.time() * 1000))
        states[key] = new_state.to_json()
        return out

    # One event at a time: a Faust table writes its changelog to the partition of the event
    # being processed, so batching here would file state under the wrong partition. Decisions
    # are keyed by person id like shared events, so a child's both land in the same partition.
    @hub.app.agent(hub.topic(SHARED, DECISIONS), name="triage")
    async def triage_agent(stream: Any) -> None:
        async for event in stream.events():
            started = time.perf_counter()
            message = _in_message(event)
            out = step(message)
            await hub.guarded("triage", partial(hub.emit, out))
            hub.observer.batch("triage", [message], out, time.perf_counter() - started)


def _triage_store(hub: Hub) -> None:
    sink = StoreSink(hub.codec, TriageStore(hub.sessions))

    @hub.app.agent(hub.topic(ALERTS, OUTCOMES, SHARED), name="triage-store")
    async def triage_store(stream: Any) -> None:
        async for events in stream.take_events(BATCH_SIZE, within=BATCH_WITHIN_S):
            await hub.run_batch("triage-store", sink.process, events)


STAGES: dict[str, Callable[[Hub], None]] = {
    "enrichment": _enrichment, "sharing": _sharing, "triage": _triage, "triage-store": _triage_store}


def _in_message(event: Any) -> InMessage:
    message = event.message
    return InMessage(message.topic, message.partition, message.offset, message.key, message.value)
