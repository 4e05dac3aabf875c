"""The enrichment stage: decode inbound events, link them to persons, emit enriched events.

Anything that cannot be decoded or is not an inbound event goes to the dead-letter topic with
its reason; the rest of the batch goes on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mash.codec import Codec, CodecError
from mash.limits import envelope_over_limit
from mash.revisions import revision_ms
from mash.topics import AGENCIES, ENRICHED, INBOUND_SCHEMAS, MATCH_ANSWERS, inbound
from services.enrichment.comparisons import profile_of
from services.enrichment.context import address_key, status_change
from services.enrichment.linking import identifiers_of
from services.enrichment.person_index import EventToLink, PersonIndex
from services.messages import InMessage, OutMessage, dead_letter_for

STAGE = "hub:enrichment"
ENRICHED_SCHEMA = "uk.mash.hub.EnrichedEvent"
MERGED_SCHEMA = "uk.mash.hub.PersonMerged"
_PAYLOAD_TYPES = {
    "uk.mash.police.PublicProtectionNotification": "uk.mash.police.PpnDetails",
    "uk.mash.health.EmergencyAttendance": "uk.mash.health.AttendanceDetails",
    "uk.mash.education.EducationConcern": "uk.mash.education.ConcernDetails",
    "uk.mash.social_care.SocialCareEvent": "uk.mash.social_care.CaseEventDetails",
}
_INBOUND = frozenset(INBOUND_SCHEMAS.values())
ANSWER_SCHEMA = "uk.mash.hub.MatchAnswer"


class NotAnInboundEvent(CodecError):
    """A well-formed message of a schema that does not belong on an inbound topic."""


class OverLimitEvent(CodecError):
    """An inbound event with a field longer than the bus allows (mash.limits): refused here whoever
    produced it, so the person index never meets it and one event never stops the stage."""


class MisplacedEvent(CodecError):
    """A message on a topic not its own: an inbound event in another agency's schema, or with a
    `source_agency` other than the topic's agency (a compromised or misconfigured feed writing as
    another agency); a match answer anywhere but the answers topic (a feed confirming merges)."""


def misplaced(topic: str, schema_name: str, source_agency: str) -> str | None:
    """Why an inbound event does not belong on `topic` (its name as consumed, after any deployment
    prefix), or None when it does: each agency's topic carries that agency's schema, written as that
    agency. Each feed's credentials reach only its own topic, so the topic is what vouches for the
    agency; the envelope's claim is the feed's word and is checked against it."""
    agency = next((a for a in AGENCIES if topic.endswith(inbound(a))), None)
    if agency is None:
        return f"an inbound event ({schema_name}) on {topic}, which is no agency's inbound topic"
    if schema_name != INBOUND_SCHEMAS[agency]:
        return f"{schema_name} on {inbound(agency)}, which carries {INBOUND_SCHEMAS[agency]} only"
    if source_agency != agency.upper():
        return (f"source_agency {source_agency} on {inbound(agency)}: the {agency.upper()} feed may write "
                "only as its own agency")
    return None


class Enricher:
    def __init__(self, codec: Codec, index: PersonIndex) -> None:
        self.codec = codec
        self.index = index

    def process(self, batch: Sequence[InMessage]) -> list[OutMessage]:
        out: list[OutMessage] = []
        events: list[tuple[dict[str, Any], str, EventToLink]] = []
        for message in batch:
            try:
                if self.codec.writer_of(message.value).name == ANSWER_SCHEMA:
                    if not message.topic.endswith(MATCH_ANSWERS):  # a feed must not confirm merges
                        raise MisplacedEvent(f"{ANSWER_SCHEMA} belongs on {MATCH_ANSWERS}, not {message.topic}")
                    out.extend(self._answer(message))
                    continue
                events.append(self._decode(message))
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the stream
                out.append(dead_letter_for(message, exc, STAGE, self.codec))
        results = self.index.link_batch([link for _, _, link in events])
        for (event, schema_name, _), result in zip(events, results, strict=True):
            decision = result.decision
            match = decision.match
            enriched = {
                "envelope": event["envelope"],
                "person_id": decision.person_id,
                "link_method": decision.method,
                "payload": (_PAYLOAD_TYPES[schema_name], event["payload"]),
                "match_score": match.score if match else None,
                "match_model_version": result.model_version,
                "possible_match_person_id": decision.review_candidate,
                "merged_person_ids": list(decision.merge),
                "context": result.context,
            }
            facts = [("mash.link_method", decision.method.encode()),
                     ("mash.held_for_review", b"true" if decision.review_candidate else b"false")]
            out.append(OutMessage(ENRICHED, decision.person_id.encode(),
                                  self.codec.encode(enriched, ENRICHED_SCHEMA, check_types=False), facts))
            out.extend(self._merged(retired, decision.person_id, event["envelope"]["event_id"])
                       for retired in decision.merge)
        return out

    def _answer(self, message: InMessage) -> list[OutMessage]:
        """A person confirmed or rejected a possible match (triage app, `mash.match_answers.v1`)."""
        answer, _ = self.codec.decode(message.value, ANSWER_SCHEMA)
        merged = self.index.answer(answer["review_event_id"], answer["answer"] == "CONFIRMED", answer["answered_by"])
        return [self._merged(merged[0], merged[1], answer["review_event_id"])] if merged else []

    def _merged(self, retired: str, survivor: str, event_id: str) -> OutMessage:
        """Tell triage, keyed by the retired person, to hand that person's alerts to the survivor."""
        notice = {"retired_person_id": retired, "surviving_person_id": survivor, "event_id": event_id,
                  "merged_at": int(time.time() * 1000), "retired_state": None}
        return OutMessage(ENRICHED, retired.encode(), self.codec.encode(notice, MERGED_SCHEMA, check_types=False))

    def _decode(self, message: InMessage) -> tuple[dict[str, Any], str, EventToLink]:
        writer = self.codec.writer_of(message.value)
        if writer.name not in _INBOUND:
            raise NotAnInboundEvent(f"{writer.name} is not an inbound event schema")
        event, _ = self.codec.decode(message.value, reader_name=writer.name)
        wrong_place = misplaced(message.topic, writer.name, str(event["envelope"]["source_agency"]))
        if wrong_place:
            raise MisplacedEvent(wrong_place)
        too_long = envelope_over_limit(event["envelope"])
        if too_long:
            raise OverLimitEvent(f"{too_long}; the connector should have refused it")
        return event, writer.name, event_to_link(event, writer.name)


def event_to_link(event: dict[str, Any], schema_name: str) -> EventToLink:
    """What the person index needs of a decoded inbound event."""
    envelope = event["envelope"]
    subject = envelope["subject"]
    identifiers = identifiers_of(subject, envelope["source_agency"])
    strong = {i.scheme: i.value for i in identifiers if i.scheme != "local"}
    occurred = envelope["occurred_at"]
    occurred_ms = _ms(occurred)
    return EventToLink(
        event_id=envelope["event_id"], agency=envelope["source_agency"], identifiers=identifiers,
        profile=profile_of(subject, strong.get("nhs", ""), strong.get("upn", "")), occurred_ms=occurred_ms,
        status_change=status_change(schema_name, event["payload"]), address_key=address_key(subject),
        record_id=envelope.get("record_id") or envelope["event_id"],
        revised_ms=revision_ms(envelope.get("revised_at"), envelope["received_at"]),
        withdrawn=bool(envelope.get("withdrawn")))


def _ms(value: datetime | int) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)
