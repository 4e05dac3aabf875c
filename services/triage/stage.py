"""The triage stage: turn a correlation decision into the alert and outcome messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mash.codec import Codec
from mash.topics import ALERTS, OUTCOMES, SHARED
from services.messages import InMessage, OutMessage, dead_letter_for
from services.triage.correlation import (
    AlertState,
    Decision,
    EventFacts,
    PersonState,
    Rules,
    absorb,
    close,
    correlate,
    retire,
)
from services.triage.scoring import indicators_of

STAGE = "hub:triage"
ALERT_SCHEMA = "uk.mash.hub.Alert"
OUTCOME_SCHEMA = "uk.mash.hub.EventOutcome"
SHARED_SCHEMA = "uk.mash.hub.SharedEvent"
MERGED_SCHEMA = "uk.mash.hub.PersonMerged"
DECISION_SCHEMA = "uk.mash.hub.TriageDecision"


class NotForTriage(ValueError):
    """A well-formed message of a schema that does not belong on the shared topic."""


class Triage:
    def __init__(self, codec: Codec, rules: Rules) -> None:
        self.codec = codec
        self.rules = rules

    @staticmethod
    def state_key(record: dict[str, Any], schema_name: str) -> str:
        """Whose state a message is about: the event's person, or the merge's current hop."""
        if schema_name in (SHARED_SCHEMA, DECISION_SCHEMA):
            return str(record["person_id"])
        if schema_name == MERGED_SCHEMA:
            hop_two = record["retired_state"] is not None
            return str(record["surviving_person_id"] if hop_two else record["retired_person_id"])
        raise NotForTriage(f"{schema_name} does not belong on the shared topic")

    def handle(self, state: PersonState, record: dict[str, Any], schema_name: str,
               now_ms: int) -> tuple[PersonState, list[OutMessage]]:
        if schema_name == MERGED_SCHEMA:
            return self.merge(state, record, now_ms)
        if schema_name == DECISION_SCHEMA:
            new_state, closed = close(state, record["alert_id"], now_ms)
            return new_state, [self._alert(record["person_id"], closed)] if closed else []
        if state.merged_into:  # in flight when its person was retired: on to the survivor
            forwarded = {**record, "person_id": state.merged_into}
            value = self.codec.encode(forwarded, SHARED_SCHEMA, check_types=False)
            return state, [OutMessage(SHARED, state.merged_into.encode(), value)]
        return self.process(state, record, now_ms)

    def merge(self, state: PersonState, merged: dict[str, Any],
              now_ms: int) -> tuple[PersonState, list[OutMessage]]:
        """Hop one hands the retired person's state to the survivor; hop two absorbs it there."""
        survivor = merged["surviving_person_id"]
        if merged["retired_state"] is None:
            retired = retire(state, survivor)
            onward = {**merged, "retired_state": json.dumps(state.to_json())}
            return retired, [OutMessage(SHARED, survivor.encode(),
                                        self.codec.encode(onward, MERGED_SCHEMA, check_types=False))]
        handed_over = PersonState.from_json(json.loads(merged["retired_state"]))
        new_state, alerts = absorb(state, survivor, merged["retired_person_id"], handed_over,
                                   self.rules, now_ms)
        return new_state, [self._alert(survivor, alert) for alert in alerts]

    def process(self, state: PersonState, shared: dict[str, Any],
                now_ms: int) -> tuple[PersonState, list[OutMessage]]:
        """Score on the values the sharing policy let out, once: the state keeps only the indicators found."""
        person_id = shared["person_id"]
        indicators = indicators_of(self.rules.scoring, shared["event_type"], json.loads(shared["values"] or "{}"))
        facts = EventFacts(shared["event_id"], shared["source_agency"], _ms(shared["occurred_at"]), indicators)
        new_state, decision = correlate(state, person_id, facts, self.rules, now_ms)
        out = [self._outcome(facts, person_id, decision, now_ms, _ms(shared["received_at"]))]
        # A duplicate re-sends the current alert too: if the first attempt died between saving
        # state and sending, this is what delivers it (the store keeps the highest revision).
        if decision.alert is not None and (decision.alert_changed or decision.duplicate):
            out.append(self._alert(person_id, decision.alert))
        return new_state, out

    def dead_letter(self, message: InMessage, error: Exception) -> OutMessage:
        return dead_letter_for(message, error, STAGE, self.codec)

    def _outcome(self, facts: EventFacts, person_id: str, decision: Decision, now_ms: int,
                 received_ms: int) -> OutMessage:
        record = {
            "event_id": facts.event_id,
            "person_id": person_id,
            "source_agency": facts.agency,
            "outcome": decision.outcome,
            "alert_id": decision.alert.alert_id if decision.alert and decision.outcome != "NO_ALERT" else None,
            "recorded_at": now_ms,
        }
        value = self.codec.encode(record, OUTCOME_SCHEMA, check_types=False)  # built here, typed
        return OutMessage(OUTCOMES, facts.event_id.encode(), value, [  # facts for operators' metrics
            ("mash.outcome", decision.outcome.encode()), ("mash.agency", facts.agency.encode()),
            ("mash.received_ms", str(received_ms).encode()), ("mash.occurred_ms", str(facts.occurred_ms).encode()),
            ("mash.duplicate", b"true" if decision.duplicate else b"false")])

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
            "score": alert.score,
            "indicators": list(alert.indicators),
            "scoring_version": alert.scoring_version,
            "profile": alert.profile,
            "clock_started_at": alert.clock_started_ms or None,
            "at_risk_at": alert.at_risk_ms or None,
            "due_at": alert.due_ms or None,
        }
        value = self.codec.encode(record, ALERT_SCHEMA, check_types=False)  # built here, typed
        change = "closed" if alert.status == "CLOSED" else "opened" if alert.revision == 1 else "updated"
        return OutMessage(ALERTS, person_id.encode(), value, [("mash.rag", alert.rag.encode()),
                                                               ("mash.change", change.encode())])


def _ms(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(value.astimezone(UTC).timestamp() * 1000)
    return int(value)
