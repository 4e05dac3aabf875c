"""The order of an agency record's revisions, the same in every stage.

A revision is ordered by when its source says it changed (`revised_at`), held to no later than
shortly after it was received: a source clock running fast, or a hostile stamp years ahead, must
not make every later real revision look older and freeze the record. Without a stamp, when it
was received. Ties go to the event id, so every stage picks the same latest revision.
"""

from __future__ import annotations

from datetime import UTC, datetime

SKEW_MS = 300_000  # a revision time later than this after the read is the source's clock, not the record's


def revision_ms(revised_at: datetime | int | None, received_at: datetime | int) -> int:
    """The revision's place in its record's order, in epoch milliseconds."""
    received = _ms(received_at)
    return received if revised_at is None else min(_ms(revised_at), received + SKEW_MS)


def revision_time(revised_at: datetime | int | None, received_at: datetime | int) -> datetime:
    return datetime.fromtimestamp(revision_ms(revised_at, received_at) / 1000, UTC)


def _ms(moment: datetime | int) -> int:
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite returns naive UTC times
        return int(aware.timestamp() * 1000)
    return int(moment)
