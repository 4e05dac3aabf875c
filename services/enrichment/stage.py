"""The enrichment stage: decode inbound events, link them to persons, emit enriched events.

Anything that cannot be decoded or is not an inbound event goes to the dead-letter topic with
its reason; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mash.codec import Codec, CodecError
from mash.topics import ENRICHED, INBOUND_SCHEMAS
from services.enrichment.linking import Identifier, identifiers_of
from services.enrichment.person_index import PersonIndex
from services.messages import InMessage, OutMessage, dead_letter_for

STAGE = "hub:enrichment"
ENRICHED_SCHEMA = "uk.mash.hub.EnrichedEvent"
_PAYLOAD_TYPES = {
    "uk.mash.police.PublicProtectionNotification": "uk.mash.police.PpnDetails",
    "uk.mash.health.EmergencyAttendance": "uk.mash.health.AttendanceDetails",
    "uk.mash.education.EducationConcern": "uk.mash.education.ConcernDetails",
    "uk.mash.social_care.SocialCareEvent": "uk.mash.social_care.CaseEventDetails",
}
_INBOUND = frozenset(INBOUND_SCHEMAS.values())


class NotAnInboundEvent(CodecError):
    """A well-formed message of a schema that does not belong on an inbound topic."""


class Enricher:
    def __init__(self, codec: Codec, index: PersonIndex) -> None:
        self.codec = codec
        self.index = index

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        out: list[OutMessage] = []
        events: list[tuple[dict[str, Any], str, list[Identifier]]] = []
        for message in batch:
            try:
                events.append(self._decode(message))
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the stream
                out.append(dead_letter_for(message, exc, STAGE, self.codec))
        decisions = self.index.link_batch([(e["envelope"]["event_id"], ids) for e, _, ids in events])
        for (event, schema_name, _), decision in zip(events, decisions, strict=True):
            enriched = {
                "envelope": event["envelope"],
                "person_id": decision.person_id,
                "link_method": decision.method,
                "payload": (_PAYLOAD_TYPES[schema_name], event["payload"]),
            }
            out.append(OutMessage(ENRICHED, decision.person_id.encode(),
                                  self.codec.encode(enriched, ENRICHED_SCHEMA, check_types=False)))
        return out

    def _decode(self, message: InMessage) -> tuple[dict[str, Any], str, list[Identifier]]:
        writer = self.codec.writer_of(message.value)
        if writer.name not in _INBOUND:
            raise NotAnInboundEvent(f"{writer.name} is not an inbound event schema")
        event, _ = self.codec.decode(message.value, reader_name=writer.name)
        envelope = event["envelope"]
        return event, writer.name, identifiers_of(envelope["subject"], envelope["source_agency"])
