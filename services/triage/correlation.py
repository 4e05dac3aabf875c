"""One alert per child: correlate each new event with what the hub already knows of the child.

Pure: the state of one person in, the new state and the decision out. The triage agent keeps the
state in SQL keyed by person id (`state_store`) and emits what the decision says.

An event's indicators (found by scoring when it arrives) are remembered with it. Without an open
alert, the child's events within the scoring window are assessed together, and an alert opens
when their score reaches the threshold, with its response clock started; it takes in every event
of the child no alert holds yet, so what it holds does not depend on arrival order. Later events attach to
the open alert: the rating may rise and the deadline shorten, never the reverse (lowering is a
person's recorded decision, made in the triage app). A decision closes the alert; the next
concern opens a new one.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from services.triage.clocks import Profile, at_risk_time, deadline
from services.triage.scoring import Assessment, Scored, Scoring, assess, higher
from services.triage.windows import first_scoring_window

ALERT_NAMESPACE = uuid.UUID("0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21")
MAX_REMEMBERED_EVENTS = 5000  # per child: enough for years of events, bounded all the same


@dataclass(frozen=True)
class EventFacts:
    """What correlation needs of an enriched event."""

    event_id: str
    agency: str
    occurred_ms: int
    indicators: tuple[str, ...] = ()
    record_id: str = ""  # the agency record it is a revision of ("": the event is its own record)
    revised_ms: int = 0  # orders the record's revisions
    withdrawn: bool = False  # the source retracted the record

    @property
    def record(self) -> str:
        return self.record_id or self.event_id


@dataclass(frozen=True)
class SeenEvent:
    event_id: str
    agency: str
    occurred_ms: int
    outcome: str
    alert_id: str | None
    indicators: tuple[str, ...] = ()
    record_id: str = ""
    revised_ms: int = 0
    withdrawn: bool = False
    superseded_by: str | None = None  # a later revision of the record replaced it (or it came too late)
    kind: str = "NEW"  # NEW | REVISION | WITHDRAWAL
    held_by: str | None = None  # the alert that holds it now (None: it waits in none)

    def scored(self) -> Scored:
        return Scored(self.agency, self.occurred_ms, self.indicators)

    @property
    def record(self) -> str:
        return self.record_id or self.event_id

    @property
    def live(self) -> bool:
        """The record as it stands: the latest revision, not withdrawn. Only these are scored."""
        return self.superseded_by is None and not self.withdrawn

    @property
    def waiting(self) -> bool:
        """Live and in no alert yet: the next alert raised for the child takes it in."""
        return self.live and self.held_by is None


@dataclass(frozen=True)
class Rules:
    """How to rate and how soon to respond: the partnership's scoring and RAG profile."""

    scoring: Scoring
    profile: Profile

    @property
    def window_ms(self) -> int:
        return self.scoring.window_days * 86_400_000


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
    score: int = 0
    indicators: tuple[str, ...] = ()
    clock_started_ms: int = 0  # the current rating's clock: from opening, or from the last escalation
    due_ms: int = 0
    at_risk_ms: int = 0
    profile: str = ""
    scoring_version: str = ""
    joined: tuple[int, ...] = ()  # the alert revision at which each of event_ids joined it
    review: str | None = None  # why a person should re-rate: a revision would rate the child lower
    follows: str | None = None  # the decided alert whose unseen or later events this one carries on
    absorbed_into: str | None = None  # closed by a merge into this alert


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
        alert = _alert_from_json(data["alert"]) if data.get("alert") else None
        closed = tuple(_alert_from_json(a) for a in data.get("closed_alerts", ()))
        events = tuple(SeenEvent(**{**e, "indicators": tuple(e.get("indicators", ()))}) for e in data["events"])
        if any("held_by" not in e for e in data["events"]):  # saved before alerts took in what waited
            named = {i: a.alert_id for a in (*closed, *((alert,) if alert else ())) for i in a.event_ids}
            events = tuple(replace(e, held_by=e.alert_id or named.get(e.event_id)) for e in events)
        return cls(events=events, alert=alert, merged_into=data.get("merged_into"), closed_alerts=closed,
                   merged_from=tuple(data.get("merged_from", ())))


def _alert_from_json(data: dict[str, Any]) -> AlertState:
    tuples = ("reasons", "agencies", "event_ids", "indicators", "joined")
    return AlertState(**{**data, **{k: tuple(data.get(k, ())) for k in tuples}})


@dataclass(frozen=True)
class Decision:
    outcome: str  # ALERT_RAISED | ATTACHED_TO_ALERT | NO_ALERT | STALE_REVISION
    alert: AlertState | None  # the child's current alert
    duplicate: bool = False
    alert_changed: bool = False
    event_alert_id: str | None = None  # the alert this event raised or joined (a repeat names the first one's)
    kind: str = "NEW"  # NEW | REVISION | WITHDRAWAL


def correlate(state: PersonState, person_id: str, event: EventFacts, rules: Rules,
              now_ms: int, newer_elsewhere: SeenEvent | None = None) -> tuple[PersonState, Decision]:
    """Decide the outcome of `event` for this person and the person's new state.

    Records live: an event of a record already here is a revision of it. A revision older than the
    one held is recorded and ignored; a newer one replaces it in scoring (a withdrawal takes it out).
    `newer_elsewhere`: the record's revision another child holds (it was re-linked there), if any.
    """
    previous = next((e for e in state.events if e.event_id == event.event_id), None)
    if previous is not None:  # at-least-once delivery: same decision again, nothing new
        return state, Decision(previous.outcome, state.alert, duplicate=True, event_alert_id=previous.alert_id,
                               kind=previous.kind)
    current = next((e for e in state.events if e.record == event.record and e.superseded_by is None), None)
    kind = "WITHDRAWAL" if event.withdrawn else "REVISION" if current else "NEW"
    seen = SeenEvent(event.event_id, event.agency, event.occurred_ms, "NO_ALERT", None, event.indicators,
                     event.record_id, event.revised_ms, event.withdrawn, kind=kind)
    newest = max((e for e in (current, newer_elsewhere) if e is not None), key=_order, default=None)
    if newest is not None and (event.revised_ms, event.event_id) < _order(newest):
        late = replace(seen, outcome="STALE_REVISION", superseded_by=newest.event_id)  # never rolls back
        return _remember(state, late), Decision("STALE_REVISION", state.alert, kind=kind)
    events = tuple(replace(e, superseded_by=event.event_id) if e is current else e for e in state.events)

    alert = state.alert
    if alert is not None and alert.status == "OPEN" and current is not None and current.event_id in alert.event_ids:
        revised = _revise(alert, events, seen, current, rules, now_ms)
        decision = Decision("ATTACHED_TO_ALERT", revised, alert_changed=True, kind=kind)
    elif event.withdrawn:  # out of scoring, and in no open alert: nothing to re-rate
        decision = Decision("NO_ALERT", alert, kind=kind)
    elif alert is not None and alert.status == "OPEN":
        decision = Decision("ATTACHED_TO_ALERT", _attach(alert, events, seen, rules, now_ms), alert_changed=True,
                            kind=kind)
    else:
        opened = _raise(person_id, events, seen, rules, now_ms, after=alert)
        decision = (Decision("ALERT_RAISED", opened, alert_changed=True, kind=kind) if opened
                    else Decision("NO_ALERT", alert, kind=kind))
        if opened is not None:
            events = _held(events, opened)

    alert_id = decision.alert.alert_id if decision.alert and decision.outcome != "NO_ALERT" else None
    seen = replace(seen, outcome=decision.outcome, alert_id=alert_id, held_by=alert_id)
    return (replace(_remember(replace(state, events=events), seen), alert=decision.alert),
            replace(decision, event_alert_id=alert_id))


def leave(state: PersonState, record: str, by: EventFacts, rules: Rules,
          now_ms: int) -> tuple[PersonState, AlertState | None]:
    """A revision re-linked the record to another child (a corrected identifier): it leaves this
    child's scoring. If this child's open alert rested on it, the rating stands and a person is
    asked to re-rate. A record not held here, or already left, changes nothing."""
    held = next((e for e in state.events if e.record == record and e.superseded_by is None), None)
    if held is None or (held.revised_ms, held.event_id) > (by.revised_ms, by.event_id):  # it holds a newer one
        return state, None
    events = tuple(replace(e, superseded_by=by.event_id) if e is held else e for e in state.events)
    alert = state.alert
    if alert is None or alert.status != "OPEN" or held.event_id not in alert.event_ids:
        return replace(state, events=events), None
    live = [e for e in events if e.event_id in set(alert.event_ids) and e.live]
    assessment = assess(rules.scoring, [e.scored() for e in live])
    revised = replace(alert, revision=alert.revision + 1, updated_ms=now_ms,
                      reasons=assessment.reasons, indicators=assessment.indicators,
                      review=f"revised downward: review ({held.agency.lower()} re-linked a record to another child)")
    return replace(state, events=events, alert=revised), revised


def _order(event: SeenEvent) -> tuple[int, str]:
    return event.revised_ms, event.event_id


def _one_live_per_record(events: tuple[SeenEvent, ...]) -> tuple[SeenEvent, ...]:
    """Two records joined by a merge may hold revisions of one record: only its latest stays live."""
    latest: dict[str, SeenEvent] = {}
    for e in events:
        if e.superseded_by is None and (e.record not in latest or _order(e) > _order(latest[e.record])):
            latest[e.record] = e
    return tuple(replace(e, superseded_by=latest[e.record].event_id)
                 if e.superseded_by is None and latest[e.record] is not e else e for e in events)


def _remember(state: PersonState, seen: SeenEvent) -> PersonState:
    return replace(state, events=(*state.events, seen)[-MAX_REMEMBERED_EVENTS:])


def close(state: PersonState, alert_id: str, now_ms: int, rules: Rules, revision: int | None = None,
          person_id: str = "") -> tuple[PersonState, list[AlertState]]:
    """A decision was recorded on the alert at `revision` (what the person saw): it leaves the queue,
    and events that joined it after that revision open a new alert that follows it. A decision on
    an alert absorbed by a merge applies to the alert that absorbed it, for the events it held. A
    decision on an alert that is not this child's open one (already closed, redelivered) changes
    nothing."""
    alert = state.alert
    if alert is None or alert.status != "OPEN":
        return state, []
    decided = _decided_alert(state, alert_id)
    if decided is None:
        return state, []
    seen = set(_seen_ids(decided, revision))
    closed = replace(alert, status="CLOSED", revision=alert.revision + 1, updated_ms=now_ms)
    unseen = [e for e in alert.event_ids if e not in seen]
    if not unseen:
        return replace(state, alert=closed), [closed]
    closed = replace(closed, event_ids=tuple(e for e in alert.event_ids if e in seen),
                     joined=tuple(j for e, j in zip(alert.event_ids, _joined_of(alert), strict=True) if e in seen))
    follow = _follow_up(person_id, closed, unseen, state.events, rules, now_ms)
    # What the decision did not see is held by the follow-up, or waits again for the next alert.
    events = tuple(replace(e, held_by=follow.alert_id if follow and e.event_id in follow.event_ids else None)
                   if e.event_id in set(unseen) else e for e in state.events)
    if follow is None:  # what came since lowers or retracts what was decided: the decision stands
        return replace(state, events=events, alert=closed), [closed]
    return replace(state, events=events, alert=follow), [closed, follow]


def _decided_alert(state: PersonState, alert_id: str) -> AlertState | None:
    """The alert a decision names, if it is the open one or was absorbed into it."""
    alert = state.alert
    if alert is None:
        return None
    if alert.alert_id == alert_id:
        return alert
    absorbed = {a.alert_id: a for a in state.closed_alerts}
    step = absorbed.get(alert_id)
    for _ in range(len(absorbed)):  # merges of merges: follow the chain to the open alert
        if step is None or step.absorbed_into == alert.alert_id:
            break
        step = absorbed.get(step.absorbed_into or "")
    return absorbed[alert_id] if step is not None and step.absorbed_into == alert.alert_id else None


def _seen_ids(alert: AlertState, revision: int | None) -> tuple[str, ...]:
    if revision is None:
        return alert.event_ids
    return tuple(e for e, j in zip(alert.event_ids, _joined_of(alert), strict=True) if j <= revision)


def _joined_of(alert: AlertState) -> tuple[int, ...]:
    """When each event joined; alerts from before this was kept count every event as seen from the start."""
    return alert.joined if len(alert.joined) == len(alert.event_ids) else (1,) * len(alert.event_ids)


def _follow_up(person_id: str, decided: AlertState, unseen: list[str], history: tuple[SeenEvent, ...],
               rules: Rules, now_ms: int) -> AlertState | None:
    """A new alert for what a decision had not seen: new information on a child just judged to need
    attention, rated on the records as they now stand (the decided ones with it). None when nothing
    unseen is live (a withdrawal, a revision superseded) or when what stands no longer scores."""
    live = [e for e in history if e.event_id in set(unseen) and e.live]
    if not live:
        return None
    members = set(decided.event_ids) | set(unseen)
    assessment = assess(rules.scoring, [e.scored() for e in history if e.event_id in members and e.live])
    if assessment.rag is None:
        return None
    rag, reasons, indicators, score = assessment.rag, assessment.reasons, assessment.indicators, assessment.score
    alert_id = str(uuid.uuid5(ALERT_NAMESPACE, f"{person_id}/{decided.alert_id}/after/{unseen[-1]}"))
    agencies = tuple(sorted({e.agency for e in live}))
    ids = tuple(e.event_id for e in live)
    follow = replace(decided, alert_id=alert_id, revision=1, status="OPEN", event_ids=ids, joined=(1,) * len(ids),
                     opened_ms=now_ms, updated_ms=now_ms, agencies=agencies, rag=rag, score=score,
                     indicators=indicators,
                     reasons=(*reasons, f"arrived while alert {decided.alert_id} was being decided"),
                     follows=decided.alert_id, review=None, absorbed_into=None)
    return _start_clock(follow, rag, rules.profile, now_ms)


def _raise(person_id: str, history: tuple[SeenEvent, ...], event: SeenEvent, rules: Rules, now_ms: int,
           after: AlertState | None = None) -> AlertState | None:
    """An alert when some window of `window_days` holding this event scores one. It takes in every
    live event of the child that waits in no alert, however long ago it happened: what arrived
    first is part of the picture. So, until a person decides, the events an alert holds and its
    rating do not depend on the order the events arrived in: whichever of a scoring window's events
    comes last finds the window, and the alert then holds them all."""
    live = [e for e in history if e.live] + [event]
    window = _scoring_window(live, event, rules)
    if window is None:
        return None
    waiting = [e for e in live if e.waiting]
    decided = [e for e in window if not e.waiting]  # a decision saw them; they still count towards the rating
    return _open(person_id, [*decided, *waiting], waiting, rules, now_ms, after)


def _scoring_window(live: list[SeenEvent], event: SeenEvent, rules: Rules) -> list[SeenEvent] | None:
    """The earliest window of `window_days` holding `event` whose events score an alert, if any."""
    around = [e for e in live if abs(e.occurred_ms - event.occurred_ms) <= rules.window_ms]
    return first_scoring_window(rules.scoring, around, SeenEvent.scored, rules.window_ms, lambda e: e is event)


def _held(events: tuple[SeenEvent, ...], alert: AlertState) -> tuple[SeenEvent, ...]:
    """The child's waiting events, marked as taken in by the alert just raised."""
    mine = set(alert.event_ids)
    return tuple(replace(e, held_by=alert.alert_id) if e.waiting and e.event_id in mine else e for e in events)


def _open(person_id: str, assessed: list[SeenEvent], members: list[SeenEvent], rules: Rules, now_ms: int,
          after: AlertState | None = None) -> AlertState | None:
    """An alert holding `members` if the `assessed` events (the members, with any a decision saw)
    score one; the last assessed is the event that raised it."""
    assessment = assess(rules.scoring, [e.scored() for e in assessed])
    if assessment.rag is None:
        return None
    last = assessed[-1]
    members = members or [last]
    alert = AlertState(
        alert_id=str(uuid.uuid5(ALERT_NAMESPACE, f"{person_id}/{last.event_id}")),
        revision=1, rag=assessment.rag, reasons=(), agencies=(), event_ids=tuple(e.event_id for e in members),
        opened_ms=now_ms, updated_ms=now_ms, profile=rules.profile.name, joined=(1,) * len(members),
        follows=after.alert_id if after is not None and set(after.event_ids) & {e.event_id for e in assessed}
        else None,
    )
    return _rated(_start_clock(alert, assessment.rag, rules.profile, now_ms), assessed, assessment, rules)


def _attach(alert: AlertState, history: tuple[SeenEvent, ...], event: SeenEvent, rules: Rules,
            now_ms: int) -> AlertState:
    mine = set(alert.event_ids)
    events = [e for e in history if e.event_id in mine and e.live] + [event]
    assessment = assess(rules.scoring, [e.scored() for e in events])
    alert = replace(alert, revision=alert.revision + 1, event_ids=(*alert.event_ids, event.event_id),
                    joined=(*_joined_of(alert), alert.revision + 1), updated_ms=now_ms)
    return _rated(_escalate(alert, assessment.rag, rules.profile, now_ms), events, assessment, rules)


def _revise(alert: AlertState, history: tuple[SeenEvent, ...], event: SeenEvent, was: SeenEvent, rules: Rules,
            now_ms: int) -> AlertState:
    """A record in the alert changed (or was withdrawn): re-scored on the records as they now stand.
    Higher: escalated as for any new event. Lower: the rating stands and a person is asked to re-rate."""
    revised = _attach(alert, history, event, rules, now_ms) if event.live else replace(
        alert, revision=alert.revision + 1, event_ids=(*alert.event_ids, event.event_id),
        joined=(*_joined_of(alert), alert.revision + 1), updated_ms=now_ms)
    mine = set(revised.event_ids)
    live = [e for e in (*history, event) if e.event_id in mine and e.live]
    assessment = assess(rules.scoring, [e.scored() for e in live])
    # The records as they stand must still raise the alert the way any alert is raised (a window
    # of them scoring), or an alert would stand here that another arrival order never raised.
    raised = first_scoring_window(rules.scoring, live, SeenEvent.scored, rules.window_ms, lambda e: True)
    if raised is not None and RAG_ORDER.get(assessment.rag or "", 9) <= RAG_ORDER[revised.rag] \
            and assessment.score >= alert.score:
        return replace(revised, review=None) if revised.rag != alert.rag else revised
    what = (f"{event.agency.lower()} record withdrawn (entered in error)" if event.withdrawn
            else f"{event.agency.lower()} amended a record: {_change(was, event)}")
    return replace(revised, review=f"revised downward: review ({what})", score=alert.score,
                   reasons=assessment.reasons, indicators=assessment.indicators)


RAG_ORDER = {"RED": 0, "AMBER": 1, "GREEN": 2}


def _change(was: SeenEvent, now: SeenEvent) -> str:
    gone = sorted(set(was.indicators) - set(now.indicators))
    new = sorted(set(now.indicators) - set(was.indicators))
    parts = [*(f"no longer {i}" for i in gone), *(f"now {i}" for i in new)]
    return "; ".join(parts) or "indicators unchanged"


def _rated(alert: AlertState, events: list[SeenEvent], assessment: Assessment, rules: Rules) -> AlertState:
    """The alert with its score, reasons and agencies from an assessment of its events."""
    return replace(alert, score=max(alert.score, assessment.score), indicators=assessment.indicators,
                   reasons=assessment.reasons, agencies=tuple(sorted({e.agency for e in events} | set(alert.agencies))),
                   scoring_version=rules.scoring.version)


def _start_clock(alert: AlertState, rag: str, profile: Profile, now_ms: int) -> AlertState:
    start = _dt(now_ms)
    due = deadline(profile, rag, start)
    return replace(alert, rag=rag, clock_started_ms=now_ms, due_ms=_ms(due),
                   at_risk_ms=_ms(min(at_risk_time(profile, rag, start), due)))


def _escalate(alert: AlertState, proposed: str | None, profile: Profile, now_ms: int) -> AlertState:
    """Only upward: a higher rating restarts its clock now, but never moves the deadline later."""
    if higher(alert.rag, proposed) == alert.rag:
        return alert
    assert proposed is not None
    raised = _start_clock(alert, proposed, profile, now_ms)
    due = min(raised.due_ms, alert.due_ms) if alert.due_ms else raised.due_ms
    return replace(raised, due_ms=due, at_risk_ms=min(raised.at_risk_ms, due))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


MERGED_REASON = "records of two persons were found to be one child and merged"


def absorb(survivor: PersonState, survivor_id: str, retired_id: str, retired: PersonState, rules: Rules,
           now_ms: int) -> tuple[PersonState, list[AlertState]]:
    """The survivor's state after a merge, and the alert revisions to send.

    One open alert per child still holds: if only the retired person had one, it moves to the
    survivor (same alert, next revision); if both did, the survivor's absorbs the other, which
    is closed pointing at it; if neither did but the joined history scores an alert, it is
    raised, because that is the link the merge has just made. A merge delivered again changes
    nothing and re-sends the alerts as they stand.
    """
    if retired_id in survivor.merged_from or retired.merged_into is not None:  # delivered again: as it stands
        return survivor, [a for a in (survivor.alert, *survivor.closed_alerts) if a is not None]
    known = {e.event_id for e in survivor.events}
    events = _one_live_per_record(tuple(sorted(
        (*survivor.events, *(e for e in retired.events if e.event_id not in known)),
        key=lambda e: e.occurred_ms))[-MAX_REMEMBERED_EVENTS:])
    mine, theirs = _open_alert(survivor), _open_alert(retired)
    closed: list[AlertState] = []
    alert: AlertState | None
    if theirs and not mine:
        alert = _joined(theirs, None, events, rules, now_ms)
    elif theirs and mine:
        alert = _joined(mine, theirs, events, rules, now_ms)
        closed.append(replace(theirs, revision=theirs.revision + 1, status="CLOSED", updated_ms=now_ms,
                              reasons=(*theirs.reasons, f"merged into alert {mine.alert_id}"),
                              absorbed_into=mine.alert_id))
    elif mine:  # it takes in what the retired person had in no alert, as it would have had it come here
        alert = _joined(mine, None, events, rules, now_ms) if any(
            e.waiting and e.event_id not in mine.event_ids for e in events) else mine
    else:
        alert = _alert_from_history(survivor_id, events, rules, now_ms) or survivor.alert
    # Whom the retired person had absorbed goes with it: a late repeat of an older merge is seen as one.
    merged_from = tuple(dict.fromkeys((*survivor.merged_from, *retired.merged_from, retired_id)))
    if alert is not None and alert.status == "OPEN":
        events = _held(events, alert)
    state = PersonState(events, alert, None, (*survivor.closed_alerts, *closed), merged_from)
    changed = [a for a in (alert,) if a is not None and a != survivor.alert]
    return state, changed + closed


def _joined(kept: AlertState, other: AlertState | None, events: tuple[SeenEvent, ...], rules: Rules,
            now_ms: int) -> AlertState:
    """The one open alert after a merge: its events, the other alert's, and every event of the joined
    history in no alert yet (the link the merge has made, as `_raise` takes them in), re-rated (never
    lower) with the earlier deadline."""
    ids = dict.fromkeys((*kept.event_ids, *(other.event_ids if other else ())))
    ids.update(dict.fromkeys(e.event_id for e in events if e.waiting and e.event_id not in ids))
    together = [e for e in events if e.event_id in ids and e.live]
    assessment = assess(rules.scoring, [e.scored() for e in together])
    joined = {**dict(zip(kept.event_ids, _joined_of(kept), strict=True))}
    alert = replace(kept, revision=kept.revision + 1, updated_ms=now_ms, event_ids=tuple(ids),
                    joined=tuple(joined.get(e, kept.revision + 1) for e in ids))
    alert = _escalate(alert, higher(other.rag, assessment.rag) if other else assessment.rag, rules.profile, now_ms)
    if other is not None and other.due_ms:
        alert = replace(alert, due_ms=min(alert.due_ms, other.due_ms), at_risk_ms=min(alert.at_risk_ms, other.due_ms))
    alert = _rated(alert, together, assessment, rules)
    return replace(alert, reasons=(*alert.reasons, MERGED_REASON))


def retire(state: PersonState, survivor_id: str) -> PersonState:
    """A retired person points at the survivor; its history stays, so a repeated hand-over
    hands over the same."""
    return replace(state, merged_into=survivor_id)


def _open_alert(state: PersonState) -> AlertState | None:
    return state.alert if state.alert is not None and state.alert.status == "OPEN" else None


def _alert_from_history(person_id: str, events: tuple[SeenEvent, ...], rules: Rules,
                        now_ms: int) -> AlertState | None:
    """The alert the joined history scores, if a window holding an event in no alert yet scores one
    (as `_raise` finds it), holding every such event."""
    live = [e for e in events if e.live]
    waiting = [e for e in live if e.waiting]
    window = first_scoring_window(rules.scoring, live, SeenEvent.scored, rules.window_ms, lambda e: e.waiting)
    if window is None:
        return None
    alert = _open(person_id, [*(e for e in window if not e.waiting), *waiting], waiting, rules, now_ms)
    assert alert is not None  # the window scores, and more events never score less
    return replace(alert, reasons=(*alert.reasons, MERGED_REASON))
