"""A fix to Faust's restart path: resume partitions that have no committed offset from the start.

After a rebalance Faust reads its tables' changelogs first, and the consumer meanwhile fetches
(and Faust drops) records of the stream partitions; then Faust seeks each partition back to its
committed offset. aiokafka's `seek_to_committed` skips partitions whose committed offset is
missing or 0, so on those the records fetched during recovery were lost until the next restart
(seen in `test_a_killed_worker_recovers_its_state...`: a worker killed before any event of a topic
arrived, its successor never read that topic's first events). With `auto_offset_reset=earliest`
"nothing committed" means "from the beginning", so that is where those partitions are sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_NOT_STREAMS = ("-changelog", "__assignor-__leader")  # read by Faust itself, never by an agent


async def _seek_to_committed_or_beginning(consumer: Any) -> Mapping[Any, int]:
    committed: Mapping[Any, int] = await consumer.seek_to_committed()
    unread = [tp for tp, offset in committed.items() if not offset and not tp.topic.endswith(_NOT_STREAMS)]
    if unread:
        await consumer.seek_to_beginning(*unread)
    return committed


async def _seek_to_committed(self: AIOKafkaConsumerThread) -> Mapping[Any, int]:
    return await self.call_thread(_seek_to_committed_or_beginning, self._ensure_consumer())  # type: ignore[no-any-return]


def install() -> None:
    AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed  # type: ignore[method-assign]
