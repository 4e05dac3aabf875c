"""Keeping at-least-once when a stage's infrastructure fails (database down, broker unreachable).

Data errors never get here: stages dead-letter bad messages themselves. What does get here is a
failure to process a whole batch. The guard retries it with backoff, and if the failure outlasts
the retry budget it ends the process at once, before the batch is committed: the restarted worker
(or the partitions' next owner) resumes from the last commit.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("mash.hub")
EXIT_INFRASTRUCTURE = 70  # EX_SOFTWARE: the supervisor (systemd, compose) restarts the worker


async def guarded(stage: str, attempt: Callable[[], Awaitable[T]], budget_s: float,
                  exit_process: Callable[[int], None] = os._exit,
                  on_failure: Callable[[str, BaseException], None] | None = None) -> T:
    """Run `attempt` until it succeeds; retry with backoff; exit the process past the budget.

    Logs name the error's class only: a database error's message can quote the row it failed on,
    and rows hold children's details."""
    delay, waited = 0.5, 0.0
    while True:
        try:
            return await attempt()
        except Exception as exc:
            if on_failure is not None:
                on_failure(stage, exc)
            if waited >= budget_s:
                log.critical("giving up after %.0f s: %s. Exiting without acknowledging the batch; fix the "
                             "cause and restart the worker, it resumes from the last committed offset.",
                             waited, type(exc).__name__, extra={"stage": stage})
                exit_process(EXIT_INFRASTRUCTURE)
                raise
            log.error("batch failed (%s); retrying in %.1f s", type(exc).__name__, delay, extra={"stage": stage})
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)
