"""The triage store's stage: decode alert and outcome messages and hand them to the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mash.codec import Codec
from services.messages import InMessage, OutMessage, dead_letter_for
from services.triage_store.store import TriageStore

STAGE = "hub:triage_store"
ALERT = "uk.mash.hub.Alert"
OUTCOME = "uk.mash.hub.EventOutcome"


class StoreSink:
    def __init__(self, codec: Codec, store: TriageStore) -> None:
        self.codec = codec
        self.store = store

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        alerts: list[dict[str, Any]] = []
        outcomes: list[dict[str, Any]] = []
        dead: list[OutMessage] = []
        for message in batch:
            try:
                writer = self.codec.writer_of(message.value)
                if writer.name not in (ALERT, OUTCOME):
                    raise ValueError(f"{writer.name} does not belong on {message.topic}")
                record, _ = self.codec.decode(message.value, writer.name)
                (alerts if writer.name == ALERT else outcomes).append(record)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the sink
                dead.append(dead_letter_for(message, exc, STAGE, self.codec))
        self.store.apply(alerts, outcomes)
        return dead
