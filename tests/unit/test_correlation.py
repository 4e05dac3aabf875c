from datetime import UTC, datetime
from pathlib import Path

import orjson

from services.triage import state_store
from services.triage.correlation import MERGED_REASON, EventFacts, PersonState, Rules, absorb, close, correlate, retire
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring

DAY = 86_400_000
HOUR = 3_600_000
BASE = int(datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp() * 1000)  # a Monday morning
# Correlation mechanics are tested with frozen weights (two agencies make AMBER, police HIGH alone RED),
# not the calibrated policies/triage/scoring.yaml: see the file's header.
MECHANICS_SCORING = Path(__file__).resolve().parents[1] / "support" / "scoring_mechanics.yaml"
RULES = Rules(load_scoring(MECHANICS_SCORING), load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml"))


def run(events: list[EventFacts], state: PersonState | None = None) -> tuple[PersonState, list[str]]:
    state = state or PersonState()
    outcomes = []
    for event in events:
        state, decision = correlate(state, "person-1", event, RULES, now_ms=BASE + event.occurred_ms)
        outcomes.append(decision.outcome)
    return state, outcomes


def test_one_agency_alone_raises_no_alert() -> None:
    state, outcomes = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "POLICE", DAY)])
    assert outcomes == ["NO_ALERT", "NO_ALERT"] and state.alert is None


def test_two_agencies_within_the_window_raise_an_amber_alert_with_both_events() -> None:
    state, outcomes = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", 2 * DAY)])
    assert outcomes == ["NO_ALERT", "ALERT_RAISED"]
    assert state.alert is not None
    assert state.alert.rag == "AMBER"
    assert state.alert.event_ids == ("e1", "e2")
    assert state.alert.agencies == ("HEALTH", "POLICE")


def test_two_agencies_further_apart_than_the_window_raise_nothing() -> None:
    _, outcomes = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", 45 * DAY)])
    assert outcomes == ["NO_ALERT", "NO_ALERT"]


def test_out_of_order_arrival_still_correlates_by_when_events_happened() -> None:
    _, outcomes = run([EventFacts("late", "HEALTH", 10 * DAY), EventFacts("early", "POLICE", 8 * DAY)])
    assert outcomes == ["NO_ALERT", "ALERT_RAISED"]


def test_later_events_attach_to_the_one_open_alert_and_raise_it_to_red() -> None:
    state, outcomes = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY),
                           EventFacts("e3", "EDUCATION", 3 * DAY)])
    assert outcomes == ["NO_ALERT", "ALERT_RAISED", "ATTACHED_TO_ALERT"]
    assert state.alert is not None
    assert (state.alert.rag, state.alert.revision) == ("RED", 2)
    assert len(state.alert.reasons) == 2


def test_an_attached_event_never_lowers_the_rating() -> None:
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY),
                    EventFacts("e3", "EDUCATION", DAY)])
    state, outcomes = run([EventFacts("e4", "POLICE", 2 * DAY)], state)
    assert outcomes == ["ATTACHED_TO_ALERT"]
    assert state.alert is not None and state.alert.rag == "RED"


def test_a_redelivered_event_gets_its_first_decision_and_changes_nothing() -> None:
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY)])
    again, decision = correlate(state, "person-1", EventFacts("e2", "HEALTH", DAY), RULES, now_ms=BASE + 99 * DAY)
    assert decision.duplicate and decision.outcome == "ALERT_RAISED"
    assert again == state


def test_alert_id_is_deterministic_so_a_replay_cannot_make_a_second_alert() -> None:
    events = [EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY)]
    first, _ = run(events)
    second, _ = run(events)
    assert first.alert is not None and second.alert is not None
    assert first.alert.alert_id == second.alert.alert_id


def test_state_survives_its_json_form() -> None:
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY)])
    assert PersonState.from_json(state.to_json()) == state
    assert PersonState.from_json(None) == PersonState()


def test_the_stored_text_of_a_state_is_its_json_form() -> None:
    """The state store writes the dataclasses straight through orjson: the same document as to_json."""
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY),
                    EventFacts("e3", "SCHOOL", 2 * DAY, ("missing_education",), "r3", 5, True)])
    state = retire(state, "person-2")
    assert state.alert is not None and state.events
    assert orjson.loads(state_store._text(state)) == orjson.loads(orjson.dumps(state.to_json()))
    assert PersonState.from_json(orjson.loads(state_store._text(state))) == state


# -- merges: two person records found to be one child -------------------------------------------

def person(*events: EventFacts) -> PersonState:
    return run(list(events))[0]


def test_a_merge_moves_the_retired_persons_open_alert_to_the_survivor() -> None:
    retired = person(EventFacts("p1", "POLICE", 0), EventFacts("h1", "HEALTH", DAY))
    survivor = person(EventFacts("s1", "EDUCATION", 90 * DAY))
    assert retired.alert is not None
    state, alerts = absorb(survivor, "survivor", "retired", retired, RULES, now_ms=BASE + 100 * DAY)
    assert [(a.alert_id, a.revision, a.status) for a in alerts] == [(retired.alert.alert_id, 2, "OPEN")]
    assert state.alert == alerts[0] and MERGED_REASON in state.alert.reasons
    assert {e.event_id for e in state.events} == {"p1", "h1", "s1"}


def test_when_both_had_alerts_the_survivors_absorbs_the_other_which_is_closed() -> None:
    retired = person(EventFacts("p1", "POLICE", 0), EventFacts("h1", "HEALTH", DAY))
    survivor = person(EventFacts("e1", "EDUCATION", 0), EventFacts("c1", "SOCIAL_CARE", DAY))
    state, alerts = absorb(survivor, "survivor", "retired", retired, RULES, now_ms=BASE + 2 * DAY)
    kept, closed = alerts
    assert kept.alert_id == survivor.alert.alert_id and kept.rag == "RED"  # type: ignore[union-attr]
    assert set(kept.event_ids) == {"p1", "h1", "e1", "c1"}
    assert (closed.alert_id, closed.status) == (retired.alert.alert_id, "CLOSED")  # type: ignore[union-attr]
    assert state.closed_alerts == (closed,)


def test_a_merge_that_joins_two_agencies_within_the_window_raises_the_alert_neither_had() -> None:
    retired = person(EventFacts("p1", "POLICE", 10 * DAY))
    survivor = person(EventFacts("h1", "HEALTH", 12 * DAY))
    state, alerts = absorb(survivor, "survivor", "retired", retired, RULES, now_ms=BASE + 20 * DAY)
    assert len(alerts) == 1 and alerts[0].agencies == ("HEALTH", "POLICE") and state.alert == alerts[0]


def test_a_merge_delivered_twice_changes_nothing_the_second_time() -> None:
    retired = person(EventFacts("p1", "POLICE", 0), EventFacts("h1", "HEALTH", DAY))
    once, first = absorb(PersonState(), "survivor", "retired", retired, RULES, now_ms=BASE + 2 * DAY)
    twice, again = absorb(once, "survivor", "retired", retired, RULES, now_ms=BASE + 3 * DAY)
    assert twice == once and again == first


def test_a_retired_person_keeps_its_history_and_points_at_the_survivor() -> None:
    retired = retire(person(EventFacts("p1", "POLICE", 0)), "survivor")
    assert retired.merged_into == "survivor" and len(retired.events) == 1
    assert PersonState.from_json(retired.to_json()) == retired


# -- scoring and response clocks -----------------------------------------------------------------

def test_a_high_risk_incident_alone_opens_a_red_alert_due_in_two_hours_even_at_night() -> None:
    night = int(datetime(2026, 11, 28, 23, tzinfo=UTC).timestamp() * 1000)  # a Saturday, 11 pm
    _, decision = correlate(PersonState(), "p", EventFacts("e1", "POLICE", night, ("police-high-risk",)),
                                RULES, now_ms=night)
    alert = decision.alert
    assert decision.outcome == "ALERT_RAISED" and alert is not None
    assert (alert.rag, alert.score, alert.indicators) == ("RED", 80, ("police-high-risk",))
    assert alert.due_ms - night == 2 * HOUR and alert.at_risk_ms - night == 90 * 60_000
    assert alert.reasons == ("police graded the incident high risk (+80)",)


def test_indicators_from_two_agencies_add_up_with_their_reasons() -> None:
    state, outcomes = run([EventFacts("e1", "EDUCATION", 0, ("attendance-drop",)),
                           EventFacts("e2", "HEALTH", DAY, ("emergency-attendance-safeguarding-flag",))])
    assert outcomes == ["NO_ALERT", "ALERT_RAISED"] and state.alert is not None
    assert state.alert.score == 85 and state.alert.rag == "RED"
    assert state.alert.indicators[0] == "two-agencies-within-7-days"


def test_escalation_brings_the_deadline_forward_and_never_pushes_it_back() -> None:
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", HOUR)])
    amber = state.alert
    assert amber is not None and amber.rag == "AMBER"
    state, _ = run([EventFacts("e3", "POLICE", 2 * HOUR, ("police-high-risk",))], state)
    red = state.alert
    assert red is not None and red.rag == "RED"
    assert red.due_ms == BASE + 4 * HOUR and red.due_ms < amber.due_ms  # two hours from the escalation
    assert red.clock_started_ms == BASE + 2 * HOUR
    state, _ = run([EventFacts("e4", "EDUCATION", 3 * HOUR)], state)
    assert state.alert is not None and (state.alert.rag, state.alert.due_ms) == ("RED", red.due_ms)


def test_a_decision_closes_the_alert_and_the_next_concern_opens_a_new_one() -> None:
    state, _ = run([EventFacts("e1", "POLICE", 0), EventFacts("e2", "HEALTH", DAY)])
    assert state.alert is not None
    first = state.alert.alert_id
    state, (closed,) = close(state, first, BASE + 2 * DAY, RULES)
    assert closed.status == "CLOSED"
    again, nothing = close(state, first, BASE + 3 * DAY, RULES)
    assert nothing == [] and again == state  # a redelivered decision changes nothing
    state, outcomes = run([EventFacts("e3", "EDUCATION", 3 * DAY, ("missing-education",))], state)
    assert outcomes == ["ALERT_RAISED"] and state.alert is not None and state.alert.alert_id != first


def test_an_older_merge_delivered_again_after_a_later_one_does_not_reopen_a_decided_alert() -> None:
    """A into B, then B into C, then the alert (now C's) is decided; A into B arrives again (a batch
    redone after a crash): it is a repeat, and the decided alert stays closed."""
    from mash.codec import Codec
    from services.triage.stage import Triage, _Written
    from services.triage.state_store import Held

    a = person(EventFacts("p1", "POLICE", 0), EventFacts("h1", "HEALTH", DAY))
    assert a.alert is not None
    held = {"A": Held(a, 1), "B": Held(person(EventFacts("e1", "EDUCATION", 90 * DAY)), 1), "C": Held(PersonState(), 0)}
    triage = Triage(Codec(), RULES)

    def merge(retired: str, survivor: str) -> list[str]:
        notice = {"retired_person_id": retired, "surviving_person_id": survivor, "retired_state": None}
        return [m.topic for m in triage._merge(held, notice, _Written(), BASE + 100 * DAY)]

    merge("A", "B")
    merge("B", "C")
    closed_state, closed = close(held["C"].state, a.alert.alert_id, BASE + 101 * DAY, RULES)
    assert [a.status for a in closed] == ["CLOSED"]
    held["C"].state = closed_state
    merge("A", "B")
    assert held["C"].state.alert is not None and held["C"].state.alert.status == "CLOSED"
    assert held["C"].state == closed_state


def test_a_moved_alert_takes_in_the_survivors_nearby_events_whichever_arrived_first() -> None:
    """The merge and the survivor's next event travel on different partitions: either order
    gives the survivor one alert holding every nearby event of both records."""
    retired = person(EventFacts("p1", "POLICE", 0), EventFacts("c1", "SOCIAL_CARE", DAY))
    survivor = person(EventFacts("p2", "POLICE", 2 * DAY))
    proof = EventFacts("c2", "SOCIAL_CARE", 3 * DAY)
    merged_first, _ = absorb(survivor, "survivor", "retired", retired, RULES, now_ms=BASE + 4 * DAY)
    merged_first, _ = correlate(merged_first, "survivor", proof, RULES, now_ms=BASE + 4 * DAY)
    event_first, _ = correlate(survivor, "survivor", proof, RULES, now_ms=BASE + 4 * DAY)
    event_first, _ = absorb(event_first, "survivor", "retired", retired, RULES, now_ms=BASE + 4 * DAY)
    for state in (merged_first, event_first):
        assert state.alert is not None and set(state.alert.event_ids) == {"p1", "c1", "p2", "c2"}
