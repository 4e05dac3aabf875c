"""A batch a stage cannot process is split until the bad message stands alone (no broker)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy.exc import OperationalError

from services.hub.isolation import isolating
from services.messages import InMessage, OutMessage

calls: list[int] = []


def message(n: int) -> InMessage:
    return InMessage("t", 0, n, None, b"bad" if n in (3, 6) else b"ok", 0)


def process(batch: Sequence[InMessage]) -> list[OutMessage]:
    calls.append(len(batch))
    if any(m.value == b"bad" for m in batch):
        raise KeyError("a field the stage expected is missing")
    return [OutMessage("out", None, m.value) for m in batch]


def dead_letter(m: InMessage, error: BaseException) -> OutMessage:
    return OutMessage("dlq", None, f"{m.offset}:{type(error).__name__}".encode())


def test_a_bad_message_is_dead_lettered_alone_and_the_rest_of_its_batch_goes_on_in_order() -> None:
    out = isolating(process, dead_letter, "test")([message(n) for n in range(8)])
    assert [(o.topic, o.value) for o in out] == [
        ("out", b"ok"), ("out", b"ok"), ("out", b"ok"), ("dlq", b"3:KeyError"), ("out", b"ok"), ("out", b"ok"),
        ("dlq", b"6:KeyError"), ("out", b"ok")]


def test_a_database_away_is_not_the_messages_fault_and_goes_to_the_guard_unsplit() -> None:
    def down(batch: Sequence[InMessage]) -> list[OutMessage]:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    calls.clear()
    with pytest.raises(OperationalError):
        isolating(down, dead_letter, "test")([message(n) for n in range(8)])
