"""The hub worker: enrichment → sharing → triage, each a consumer group of its own on Kafka.

Each stage is a `StageLoop` around a plain `process(batch) -> outputs` function: the loop sends
what the stage returns, waits for the broker's acknowledgement, and only then commits the
batch (so a crash re-delivers rather than loses; stages are idempotent on event_id). Several
workers with the same `MASH_APP_ID` share each stage's partitions through Kafka's group protocol.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from sqlalchemy.orm import Session, sessionmaker

from mash import metrics
from mash.codec import Codec
from mash.db import WalCheckpoints, engine_for, session_factory
from mash.kafka_security import HUB, aiokafka_options
from mash.settings import Settings
from mash.topics import (
    ALERTS,
    AUDIT,
    DEADLETTER,
    ENRICHED,
    HUB_STAGE_INPUTS,
    OUTCOMES,
    SHARED,
    stage_group,
    topic_name,
)
from services.enrichment.match_model import load_model
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import Enricher
from services.hub import upgrade
from services.hub.guard import guarded
from services.hub.isolation import isolating
from services.hub.observe import HubObserver
from services.hub.stage_loop import Process, StageLoop
from services.messages import OutMessage, dead_letter_for
from services.sharing.audit_keys import audit_keys
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.sharing.vocabulary import ROLES
from services.triage.correlation import Rules
from services.triage.profiles import load_profile
from services.triage.scoring_file import load_scoring
from services.triage.stage import Triage

T = TypeVar("T")
BATCH_SIZE = 1000
BATCH_WAIT_S = 0.3  # the longest a stage waits for a first message before looking again
# How long the broker may hold a fetch for data. aiokafka's 500 ms default left the enrichment
# stage idle about 400 ms between batches under a steady feed (measured at 700 events/s: p99 from
# inbound to outcome 1.41 s with 500, 1.11 s with 50). An idle stage asks 20 times a second.
FETCH_WAIT_MS = 50
GC_THRESHOLDS = (50_000, 50, 100)
STAGES = ("enrichment", "sharing", "triage")
log = logging.getLogger("mash.hub")


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
    """What every stage loop needs: settings, the codec, the database, the producer, the observer."""

    settings: Settings
    bootstrap: str
    codec: Codec
    sessions: sessionmaker[Session]
    observer: HubObserver
    outputs: dict[str, str] = field(default_factory=dict)  # catalogue name -> this deployment's topic name
    producer: AIOKafkaProducer | None = None
    loops: list[StageLoop] = field(default_factory=list)

    async def emit(self, messages: Sequence[OutMessage]) -> None:
        """Send a batch's outputs together and return once the broker has every one of them."""
        producer = self.producer
        assert producer is not None, "the hub's producer is not started"
        pending = [await producer.send(self.outputs[m.topic], m.value, key=m.key, headers=m.headers or None)
                   for m in messages]
        await asyncio.gather(*pending)  # delivered before the input is committed

    async def guarded(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await guarded(stage, attempt, self.settings.stage_retry_budget_s, on_failure=self.observer.failure)

    def add(self, stage: str, process: Process) -> StageLoop:
        # A batch may take as long as the guard's retry budget (database or broker trouble): the group
        # must wait that long for it at a rebalance, and not count the worker gone while it retries.
        patience_ms = int((self.settings.stage_retry_budget_s + 60) * 1000)
        label = f"hub:{stage}"
        process = isolating(process, lambda message, error: dead_letter_for(message, error, label, self.codec),
                            stage)
        loop = StageLoop(stage, [topic_name(t, self.settings) for t in HUB_STAGE_INPUTS[stage]],
                         stage_group(stage, self.settings), self.bootstrap, process, self.emit, self.guarded,
                         self.observer.batch, BATCH_SIZE, BATCH_WAIT_S,
                         {"rebalance_timeout_ms": patience_ms, "max_poll_interval_ms": patience_ms,
                          "fetch_max_wait_ms": FETCH_WAIT_MS, **aiokafka_options(self.settings, HUB)})
        self.loops.append(loop)
        return loop

    async def run(self) -> None:
        """Run every stage until SIGTERM or SIGINT, then finish the batches in hand and leave the groups."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.settings.app_id}.producer",
            acks="all", enable_idempotence=True, **aiokafka_options(self.settings, HUB),
            # A batch of outputs goes out in a few produce requests, not one request per message.
            linger_ms=5, max_batch_size=256 * 1024, max_request_size=2 * 1024 * 1024)
        await self.producer.start()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            tasks = [asyncio.create_task(stage.run(), name=f"stage-{stage.stage}") for stage in self.loops]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            if any(task.exception() is not None for task in done):
                self.stop()  # one stage failed: the others finish their batches and leave too
            results = await asyncio.gather(*tasks, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                raise failed[0]
        finally:
            await self.producer.stop()

    def stop(self) -> None:
        for stage in self.loops:
            stage.stop()


def build_hub(settings: Settings, bootstrap: str, stages: Sequence[str] = STAGES) -> Hub:
    """The hub with the chosen stages: all by default; fewer to scale or measure one alone."""
    unknown = set(stages) - set(_BUILDERS)
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}")
    hub = make_hub(settings, bootstrap)
    for stage in stages:
        hub.add(stage, _BUILDERS[stage](hub))
    metrics.initialise_hub(tuple(stages), tuple(ROLES))
    return hub


def make_hub(settings: Settings, bootstrap: str) -> Hub:
    engine = engine_for(settings, checkpoints_apart=True)
    if engine.dialect.name == "sqlite":
        WalCheckpoints(engine)  # commits leave the log's copying to this thread (see there)
    hub = Hub(settings, bootstrap, Codec(), session_factory(engine), HubObserver(settings.topic_prefix, tuple(ROLES)))
    hub.outputs = {name: topic_name(name, settings)
                   for name in (ENRICHED, SHARED, AUDIT, ALERTS, OUTCOMES, DEADLETTER)}
    return hub


def _enrichment(hub: Hub) -> Process:
    # Answers to possible matches come to the same stage: only enrichment writes the person index.
    return Enricher(hub.codec, PersonIndex(hub.sessions, load_model(hub.settings.match_model_in_use()))).process


def _sharing(hub: Hub) -> Process:
    return Sharer(hub.codec, hub.sessions, PolicySource(hub.settings.sharing_policy),
                  keys=audit_keys(hub.settings)).process


def _triage(hub: Hub) -> Process:
    upgrade.check(hub.sessions)  # a Faust hub's database must have its triage state moved first
    rules = Rules(load_scoring(hub.settings.triage_scoring), load_profile(hub.settings.triage_profile))
    return Triage(hub.codec, rules, hub.sessions, keys=audit_keys(hub.settings)).process_batch


_BUILDERS: dict[str, Callable[[Hub], Process]] = {"enrichment": _enrichment, "sharing": _sharing, "triage": _triage}
