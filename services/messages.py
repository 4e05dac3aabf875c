"""The plain messages a stage takes in and hands out, so stages run and test without a broker."""

from __future__ import annotations

from dataclasses import dataclass, field

from mash import deadletter
from mash.codec import Codec
from mash.topics import DEADLETTER


@dataclass(frozen=True)
class InMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int = 0  # when the broker appended it (Kafka's record timestamp)


@dataclass(frozen=True)
class OutMessage:
    topic: str  # catalogue name, before any prefix
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Contention(RuntimeError):
    """Another writer held what a batch needed (a rebalance, two workers for a moment): the batch is
    redone whole; never a message's fault, never dead-lettered."""


def dead_letter_for(message: InMessage, error: BaseException, stage: str, codec: Codec) -> OutMessage:
    """The dead letter of a message a hub stage could not process, keyed as the original."""
    origin = deadletter.Origin(stage=stage, topic=message.topic, partition=message.partition,
                               offset=message.offset, key=message.key)
    value, headers = deadletter.build(message.value, origin, error, codec)
    return OutMessage(DEADLETTER, message.key, value, headers)
