"""The triage stage: turn a correlation decision into the alert and outcome messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mash.codec import Codec
from mash.topics import ALERTS, OUTCOMES
from services.messages import InMessage, OutMessage, dead_letter_for
from services.triage.correlation import AlertState, Decision, EventFacts, PersonState, correlate

STAGE = "hub:triage"
ALERT_SCHEMA = "uk.mash.hub.Alert"
OUTCOME_SCHEMA = "uk.mash.hub.EventOutcome"


class Triage:
    def __init__(self, codec: Codec, window_days: int) -> None:
        self.codec = codec
        self.window_ms = window_days * 86_400_000

    def process(self, state: PersonState, enriched: dict[str, Any],
                now_ms: int) -> tuple[PersonState, list[OutMessage]]:
        envelope = enriched["envelope"]
        person_id = enriched["person_id"]
        facts = EventFacts(envelope["event_id"], envelope["source_agency"], _ms(envelope["occurred_at"]))
        new_state, decision = correlate(state, person_id, facts, self.window_ms, now_ms)
        out = [self._outcome(facts, person_id, decision, now_ms)]
        # A duplicate re-sends the current alert too: if the first attempt died between saving
        # state and sending, this is what delivers it (the store keeps the highest revision).
        if decision.alert is not None and (decision.alert_changed or decision.duplicate):
            out.append(self._alert(person_id, decision.alert))
        return new_state, out

    def dead_letter(self, message: InMessage, error: Exception) -> OutMessage:
        return dead_letter_for(message, error, STAGE, self.codec)

    def _outcome(self, facts: EventFacts, person_id: str, decision: Decision, now_ms: int) -> OutMessage:
        record = {
            "event_id": facts.event_id,
            "person_id": person_id,
            "source_agency": facts.agency,
            "outcome": decision.outcome,
            "alert_id": decision.alert.alert_id if decision.alert and decision.outcome != "NO_ALERT" else None,
            "recorded_at": now_ms,
        }
        value = self.codec.encode(record, OUTCOME_SCHEMA, check_types=False)  # built here, typed
        return OutMessage(OUTCOMES, facts.event_id.encode(), value)

    def _alert(self, person_id: str, alert: AlertState) -> OutMessage:
        record = {
            "alert_id": alert.alert_id,
            "person_id": person_id,
            "revision": alert.revision,
            "status": alert.status,
            "rag": alert.rag,
            "reasons": list(alert.reasons),
            "agencies": list(alert.agencies),
            "event_ids": list(alert.event_ids),
            "opened_at": alert.opened_ms,
            "updated_at": alert.updated_ms,
        }
        value = self.codec.encode(record, ALERT_SCHEMA, check_types=False)  # built here, typed
        return OutMessage(ALERTS, person_id.encode(), value)


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)
