"""The source contract: yield records with their positions; the SDK confirms and checkpoints.

A source never produces to Kafka and never saves offsets itself: it reads, and after the SDK
has the broker's confirmation it is told which positions are safe (`acknowledge`), e.g. to move
a finished file to `done/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SourceRecord:
    stream: str  # an independently ordered part of the source: a file, a table
    position: dict[str, Any]  # where this record is in its stream (JSON-able; saved as the checkpoint)
    label: str  # the position for people, e.g. "ppn-2026-11-25.jsonl:7"
    raw: bytes  # the original bytes, kept whole for the dead-letter topic
    fields: dict[str, Any] | None
    error: Exception | None = None


@dataclass(frozen=True)
class StreamEnd:
    """The end of one stream (e.g. a whole file read): confirm, checkpoint, then acknowledge."""

    stream: str
    position: dict[str, Any]


@dataclass(frozen=True)
class Idle:
    """Nothing to read for now: the SDK confirms what it has sent before the source waits."""


IDLE = Idle()
Item = SourceRecord | StreamEnd | Idle


class Source(ABC):
    running: bool = True
    keeps_checkpoints: bool = True  # False for sources with nothing to resume (an HTTP push)

    @abstractmethod
    def items(self, checkpoints: dict[str, dict[str, Any]]) -> Iterator[Item]:
        """Yield what comes after `checkpoints` (stream → last confirmed position)."""

    def acknowledge(self, end: StreamEnd, dead_lettered: Sequence[tuple[str, str]]) -> None:  # noqa: B027
        """Every record of a stream is on the broker and checkpointed; `dead_lettered` lists the
        (label, reason) of those that went to the dead-letter topic. Optional: a safe default."""

    def stop(self) -> None:
        """Ask `items` to finish at its next chance; only signals."""
        self.running = False
