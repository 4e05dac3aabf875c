"""One alert per child: correlate each new event with what the hub already knows of the child.

Pure: the state of one person in, the new state and the decision out. The triage agent keeps the
state in a Faust table keyed by person id and emits what the decision says.

This first version raises an alert when two or more agencies report a child within the
correlation window, rates it AMBER, and RED from three agencies. A child with an open alert
keeps it: later events attach and may raise its rating, never lower it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any

ALERT_NAMESPACE = uuid.UUID("0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21")
RAG_ORDER = ("GREEN", "AMBER", "RED")
MAX_REMEMBERED_EVENTS = 5000  # per child: enough for years of events, bounded all the same


@dataclass(frozen=True)
class EventFacts:
    """What correlation needs of an enriched event."""

    event_id: str
    agency: str
    occurred_ms: int


@dataclass(frozen=True)
class SeenEvent:
    event_id: str
    agency: str
    occurred_ms: int
    outcome: str
    alert_id: str | None


@dataclass(frozen=True)
class AlertState:
    alert_id: str
    revision: int
    rag: str
    reasons: tuple[str, ...]
    agencies: tuple[str, ...]
    event_ids: tuple[str, ...]
    opened_ms: int
    updated_ms: int
    status: str = "OPEN"


@dataclass(frozen=True)
class PersonState:
    events: tuple[SeenEvent, ...] = ()
    alert: AlertState | None = None
    merged_into: str | None = None  # a retired person: whatever still arrives for it goes there
    closed_alerts: tuple[AlertState, ...] = ()  # alerts absorbed in merges, kept so a replay repeats them
    merged_from: tuple[str, ...] = ()  # retired persons already absorbed (a redelivered merge is a no-op)

    def to_json(self) -> dict[str, Any]:
        return {"events": [asdict(e) for e in self.events],
                "alert": asdict(self.alert) if self.alert else None,
                "merged_into": self.merged_into,
                "closed_alerts": [asdict(a) for a in self.closed_alerts], "merged_from": list(self.merged_from)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PersonState:
        if not data:
            return cls()
        alert = data.get("alert")
        return cls(
            events=tuple(SeenEvent(**e) for e in data["events"]),
            alert=_alert_from_json(alert) if alert else None,
            merged_into=data.get("merged_into"),
            closed_alerts=tuple(_alert_from_json(a) for a in data.get("closed_alerts", ())),
            merged_from=tuple(data.get("merged_from", ())),
        )


def _alert_from_json(data: dict[str, Any]) -> AlertState:
    return AlertState(
        alert_id=data["alert_id"], revision=data["revision"], rag=data["rag"],
        reasons=tuple(data["reasons"]), agencies=tuple(data["agencies"]), event_ids=tuple(data["event_ids"]),
        opened_ms=data["opened_ms"], updated_ms=data["updated_ms"], status=data["status"],
    )


@dataclass(frozen=True)
class Decision:
    outcome: str  # ALERT_RAISED | ATTACHED_TO_ALERT | NO_ALERT
    alert: AlertState | None
    duplicate: bool = False
    alert_changed: bool = False


def correlate(state: PersonState, person_id: str, event: EventFacts, window_ms: int,
              now_ms: int) -> tuple[PersonState, Decision]:
    """Decide the outcome of `event` for this person and the person's new state."""
    previous = next((e for e in state.events if e.event_id == event.event_id), None)
    if previous is not None:  # at-least-once delivery: same decision again, nothing new
        return state, Decision(previous.outcome, state.alert, duplicate=True)

    if state.alert is not None and state.alert.status == "OPEN":
        alert = _attach(state.alert, event, window_ms, now_ms)
        decision = Decision("ATTACHED_TO_ALERT", alert, alert_changed=True)
    else:
        nearby = [e for e in state.events if abs(e.occurred_ms - event.occurred_ms) <= window_ms]
        agencies = sorted({e.agency for e in nearby} | {event.agency})
        if len(agencies) >= 2:
            alert = _open(person_id, event, nearby, agencies, window_ms, now_ms)
            decision = Decision("ALERT_RAISED", alert, alert_changed=True)
        else:
            decision = Decision("NO_ALERT", state.alert)

    seen = SeenEvent(event.event_id, event.agency, event.occurred_ms, decision.outcome,
                     decision.alert.alert_id if decision.alert and decision.outcome != "NO_ALERT" else None)
    events = (*state.events, seen)[-MAX_REMEMBERED_EVENTS:]
    return PersonState(events, decision.alert), decision


def rag_for(agencies: list[str] | tuple[str, ...]) -> str:
    return "RED" if len(set(agencies)) >= 3 else "AMBER"


def _reason(agencies: list[str] | tuple[str, ...], window_ms: int) -> str:
    days = window_ms // 86_400_000
    return f"{len(agencies)} agencies reported this child within {days} days: {', '.join(agencies)}"


def _open(person_id: str, event: EventFacts, nearby: list[SeenEvent], agencies: list[str],
          window_ms: int, now_ms: int) -> AlertState:
    return AlertState(
        alert_id=str(uuid.uuid5(ALERT_NAMESPACE, f"{person_id}/{event.event_id}")),
        revision=1,
        rag=rag_for(agencies),
        reasons=(_reason(agencies, window_ms),),
        agencies=tuple(agencies),
        event_ids=(*(e.event_id for e in nearby), event.event_id),
        opened_ms=now_ms,
        updated_ms=now_ms,
    )


def _attach(alert: AlertState, event: EventFacts, window_ms: int, now_ms: int) -> AlertState:
    agencies = tuple(sorted(set(alert.agencies) | {event.agency}))
    rag = max(alert.rag, rag_for(agencies), key=RAG_ORDER.index)  # never silently lowered
    reasons = alert.reasons
    if agencies != alert.agencies:
        reasons = (*reasons, _reason(agencies, window_ms))
    return replace(alert, revision=alert.revision + 1, rag=rag, reasons=reasons, agencies=agencies,
                   event_ids=(*alert.event_ids, event.event_id), updated_ms=now_ms)


MERGED_REASON = "records of two persons were found to be one child and merged"


def absorb(survivor: PersonState, survivor_id: str, retired_id: str, retired: PersonState, window_ms: int,
           now_ms: int) -> tuple[PersonState, list[AlertState]]:
    """The survivor's state after a merge, and the alert revisions to send.

    One open alert per child still holds: if only the retired person had one, it moves to the
    survivor (same alert, next revision); if both did, the survivor's absorbs the other, which
    is closed pointing at it; if neither did but the joined history shows two agencies within
    the window, an alert is raised, because that is the link the merge has just made. A merge
    delivered again changes nothing and re-sends the alerts as they stand.
    """
    if retired_id in survivor.merged_from:
        return survivor, [a for a in (survivor.alert, *survivor.closed_alerts) if a is not None]
    known = {e.event_id for e in survivor.events}
    events = tuple(sorted((*survivor.events, *(e for e in retired.events if e.event_id not in known)),
                          key=lambda e: e.occurred_ms))[-MAX_REMEMBERED_EVENTS:]
    mine, theirs = _open_alert(survivor), _open_alert(retired)
    closed: list[AlertState] = []
    if theirs and not mine:
        alert: AlertState | None = replace(theirs, revision=theirs.revision + 1, updated_ms=now_ms,
                                           reasons=(*theirs.reasons, MERGED_REASON))
    elif theirs and mine:
        agencies = tuple(sorted(set(mine.agencies) | set(theirs.agencies)))
        alert = replace(mine, revision=mine.revision + 1, updated_ms=now_ms, agencies=agencies,
                        rag=max(mine.rag, theirs.rag, rag_for(agencies), key=RAG_ORDER.index),
                        reasons=(*mine.reasons, MERGED_REASON),
                        event_ids=(*mine.event_ids, *(e for e in theirs.event_ids if e not in mine.event_ids)))
        closed.append(replace(theirs, revision=theirs.revision + 1, status="CLOSED", updated_ms=now_ms,
                              reasons=(*theirs.reasons, f"merged into alert {mine.alert_id}")))
    elif mine:
        alert = mine
    else:
        alert = _alert_from_history(survivor_id, events, window_ms, now_ms) or survivor.alert
    state = PersonState(events, alert, None, (*survivor.closed_alerts, *closed), (*survivor.merged_from, retired_id))
    changed = [a for a in (alert,) if a is not None and a != survivor.alert]
    return state, changed + closed


def retire(state: PersonState, survivor_id: str) -> PersonState:
    """A retired person points at the survivor; its history stays, so a repeated hand-over
    hands over the same."""
    return replace(state, merged_into=survivor_id)


def _open_alert(state: PersonState) -> AlertState | None:
    return state.alert if state.alert is not None and state.alert.status == "OPEN" else None


def _alert_from_history(person_id: str, events: tuple[SeenEvent, ...], window_ms: int,
                        now_ms: int) -> AlertState | None:
    for i, first in enumerate(events):
        nearby = [e for e in events[i:] if e.occurred_ms - first.occurred_ms <= window_ms]
        agencies = sorted({e.agency for e in nearby})
        if len(agencies) >= 2:
            last = EventFacts(nearby[-1].event_id, nearby[-1].agency, nearby[-1].occurred_ms)
            alert = _open(person_id, last, nearby[:-1], agencies, window_ms, now_ms)
            return replace(alert, reasons=(*alert.reasons, MERGED_REASON))
    return None
