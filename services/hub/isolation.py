"""One bad message never fails its batch: a batch a stage cannot process is split in halves until
the message that fails stands alone, and that one is dead-lettered with its reason.

Infrastructure failures (the database or the broker unreachable, a transaction given up for
another's) are not the message's fault: they go up unsplit, to the guard, which retries the whole
batch and never dead-letters good messages because a server was away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kafka.errors import KafkaError as SyncKafkaError
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.messages import Contention, InMessage, OutMessage

try:  # the hub's own client; connectors' kafka-python errors are handled alike
    from aiokafka.errors import KafkaError as AsyncKafkaError
except ImportError:  # pragma: no cover - aiokafka is a hub dependency
    AsyncKafkaError = SyncKafkaError

log = logging.getLogger("mash.hub")
Process = Callable[[list[InMessage]], list[OutMessage]]
DeadLetter = Callable[[InMessage, BaseException], OutMessage]
_RETRY_STATES = ("40001", "40P01")  # serialisation failure, deadlock: another writer's, not this data's


def infrastructure(error: BaseException) -> bool:
    """A failure of what the stage runs on, not of the messages: retry, never dead-letter."""
    if isinstance(error, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, OSError,
                          SyncKafkaError, AsyncKafkaError, TimeoutError, Contention)):
        return True
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in _RETRY_STATES


def isolating(process: Process, dead_letter: DeadLetter, stage: str) -> Process:
    """`process`, with a failing batch split until each failure is one message's dead letter."""

    def run(batch: list[InMessage]) -> list[OutMessage]:
        try:
            return process(batch)
        except Exception as exc:
            if infrastructure(exc):
                raise
            if len(batch) == 1:
                log.error("a message failed alone (%s): dead-lettered, the stream goes on", type(exc).__name__,
                          extra={"stage": stage})
                return [dead_letter(batch[0], exc)]
            middle = len(batch) // 2
            return run(batch[:middle]) + run(batch[middle:])

    return run
