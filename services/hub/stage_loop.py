"""One hub stage on Kafka's own mechanisms: a consumer group, batches, manual commits.

The loop is the whole delivery contract: fetch a batch, process it off the event loop, send
every output and wait for the broker to acknowledge them, and only then commit the batch's
offsets. A crash anywhere before the commit re-delivers the batch to whoever owns its partitions
next (stages are idempotent); nothing fetched is ever skipped, because the only position that
matters is the committed one, kept by the broker.

A rebalance waits for the batch in hand: the revocation callback takes the same lock as a batch,
so partitions change hands only between batches, with their offsets committed.

The hub ran on Faust's consumer before, which drops records fetched around a rebalance and
filters re-fetched ones by a read offset that a seek does not always reset: after a restart with a
backlog, partitions stopped for good while the worker reported ready (issue 14).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from services.messages import InMessage, OutMessage

log = logging.getLogger("mash.hub")
Process = Callable[[list[InMessage]], list[OutMessage]]


@dataclass
class Progress:
    """What a stage's liveness check needs: how much work it holds and when it last moved."""

    pending: int = 0  # messages on its assigned partitions past what it has committed
    last_progress: float = field(default_factory=time.monotonic)  # a batch committed, or nothing to do
    batches: int = 0

    def stalled(self, after_s: float, now: float | None = None) -> bool:
        """Work waiting and nothing committed for `after_s`: a stage that holds work but does not move."""
        return self.pending > 0 and (now if now is not None else time.monotonic()) - self.last_progress > after_s


class StageLoop(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: str, topics: Sequence[str], group: str, bootstrap: str, process: Process,
                 emit: Callable[[Sequence[OutMessage]], Awaitable[None]],
                 guard: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
                 observe: Callable[[str, Sequence[InMessage], Sequence[OutMessage], float], None],
                 batch_size: int, batch_wait_s: float, consumer_options: dict[str, Any] | None = None) -> None:
        self.stage = stage
        self.topics = list(topics)
        self.group = group
        self.process = process
        self.progress = Progress()
        self._emit, self._guard, self._observe = emit, guard, observe
        self._batch_size, self._batch_wait_ms = batch_size, int(batch_wait_s * 1000)
        self._lock = asyncio.Lock()
        self._committed: dict[TopicPartition, int] = {}
        self._stopping = False
        self._options = dict(
            bootstrap_servers=bootstrap, group_id=group, client_id=group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=batch_size,
            # A worker that dies without leaving the group holds its partitions until its
            # session times out; keep that short so a restarted worker takes over within seconds.
            session_timeout_ms=10_000, heartbeat_interval_ms=2_000, **(consumer_options or {}))
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "the stage loop is not running"
        return self._consumer

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(**self._options)  # made inside the event loop it runs on
        self.consumer.subscribe(self.topics, listener=self)
        await self.consumer.start()
        try:
            while not self._stopping:
                fetched = await self.consumer.getmany(timeout_ms=self._batch_wait_ms, max_records=self._batch_size)
                if fetched:
                    await self._batch(fetched)
                self._measure()
        finally:
            await self.consumer.stop()  # leaves the group: its partitions move at once, not after a timeout

    def stop(self) -> None:
        self._stopping = True  # after the batch in hand

    async def _batch(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        async with self._lock:
            assigned = self.consumer.assignment()
            fetched = {tp: records for tp, records in fetched.items() if tp in assigned}
            batch = [InMessage(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp or 0)
                     for records in fetched.values() for r in records]
            if not batch:
                return
            started = time.perf_counter()

            marks: list[float] = []

            async def attempt() -> list[OutMessage]:
                out = await asyncio.to_thread(self.process, batch)
                marks[:] = [time.perf_counter()]
                await self._emit(out)
                marks.append(time.perf_counter())
                return out

            out: list[OutMessage] = await self._guard(self.stage, attempt)
            offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items()}
            await self._guard(self.stage, partial(self._commit, offsets))  # the broker away: retried likewise
            done = time.perf_counter()
            self._observe(self.stage, batch, out, done - started)
            log.debug("%s: batch of %d: processed in %.0f ms, sent in %.0f ms, committed in %.0f ms", self.stage,
                      len(batch), 1000 * (marks[0] - started), 1000 * (marks[1] - marks[0]), 1000 * (done - marks[1]),
                      extra={"stage": self.stage})
            self.progress.batches += 1
            self.progress.last_progress = time.monotonic()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        try:
            await self.consumer.commit(offsets)
            self._committed.update(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group moved on (a rebalance this batch outlived): the partitions' next owner
            # re-reads from the last commit and the stages recognise what was already done.
            log.warning("offsets not committed (%s): the batch will be redone by the partitions' owner",
                        type(exc).__name__, extra={"stage": self.stage})

    def _measure(self) -> None:
        if self._consumer is None:
            return
        pending = 0
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            done = self._committed.get(tp)
            if end is not None and done is not None:
                pending += max(0, end - done)
            elif end:
                pending += end  # nothing committed by this worker yet: all of it may be ahead
        self.progress.pending = pending
        if pending == 0:
            self.progress.last_progress = time.monotonic()

    # -- the rebalance listener: partitions change hands only between batches ---------------------

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self._lock:  # the batch in hand finishes and commits first
            for tp in revoked:
                self._committed.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        for tp in assigned:
            try:
                committed = await self.consumer.committed(tp)
            except KafkaError:
                committed = None
            if committed is not None:
                self._committed[tp] = committed
        log.info("stage %s assigned %d partition(s)", self.stage, len(assigned), extra={"stage": self.stage})
