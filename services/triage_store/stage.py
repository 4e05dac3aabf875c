"""The triage store's stage: decode alert and outcome messages and hand them to the store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mash.codec import Codec
from mash.topics import SHARED as SHARED_TOPIC
from services.messages import InMessage, OutMessage, dead_letter_for
from services.triage_store.store import TriageStore

STAGE = "hub:triage_store"
ALERT = "uk.mash.hub.Alert"
OUTCOME = "uk.mash.hub.EventOutcome"
SHARED = "uk.mash.hub.SharedEvent"
MERGED = "uk.mash.hub.PersonMerged"  # shares the topic with shared events; not the timeline's business


class StoreSink:
    def __init__(self, codec: Codec, store: TriageStore) -> None:
        self.codec = codec
        self.store = store

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        found: dict[str, list[dict[str, Any]]] = {ALERT: [], OUTCOME: [], SHARED: []}
        dead: list[OutMessage] = []
        for message in batch:
            try:
                writer = self.codec.writer_of(message.value)
                if writer.name == MERGED:
                    continue
                if writer.name not in found:
                    raise ValueError(f"{writer.name} does not belong on {message.topic}")
                record, _ = self.codec.decode(message.value, writer.name)
                found[writer.name].append(record)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the sink
                if message.topic.endswith(SHARED_TOPIC):
                    continue  # the triage stage reads the same message and dead-letters it: once is enough
                dead.append(dead_letter_for(message, exc, STAGE, self.codec))
        self.store.apply(found[ALERT], found[OUTCOME], found[SHARED])
        return dead
