"""Until a person decides, what an alert holds and how it is rated do not depend on the order a
child's events arrive in: Kafka orders each partition, not the agencies' topics against each other,
so one worker, three workers or a rebalance deliver one child's events in different orders."""

from hypothesis import given, settings
from hypothesis import strategies as st

from services.triage.correlation import EventFacts, PersonState, absorb, correlate
from services.triage.scoring import Scored, assess
from services.triage.windows import first_scoring_window
from tests.unit.test_correlation import BASE, DAY, RULES

AGENCIES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
INDICATORS = tuple(i.id for i in RULES.scoring.events)


def arrive(events: list[EventFacts], person: str = "person-1") -> PersonState:
    state = PersonState()
    for n, event in enumerate(events):
        state, _ = correlate(state, person, event, RULES, now_ms=BASE + n)
    return state


def outcome(state: PersonState) -> tuple[frozenset[str], str, int, tuple[str, ...]] | None:
    alert = state.alert
    return None if alert is None else (frozenset(alert.event_ids), alert.rag, alert.score, alert.indicators)


events_of_a_child = st.lists(
    st.tuples(st.sampled_from(AGENCIES), st.integers(0, 120),
              st.lists(st.sampled_from(INDICATORS), max_size=2, unique=True)),
    min_size=1, max_size=8,
).map(lambda rows: [EventFacts(f"e{n}", agency, day * DAY, tuple(found))
                    for n, (agency, day, found) in enumerate(rows)])


@settings(max_examples=300, deadline=None)
@given(events=events_of_a_child, data=st.data())
def test_any_arrival_order_gives_the_same_alert_holding_every_event(events: list[EventFacts],
                                                                     data: st.DataObject) -> None:
    in_order = arrive(sorted(events, key=lambda e: e.occurred_ms))
    shuffled = arrive(data.draw(st.permutations(events)))
    assert outcome(shuffled) == outcome(in_order)
    if in_order.alert is not None:  # everything the child has is in it, and it is rated on everything
        assert set(in_order.alert.event_ids) == {e.event_id for e in events}
        assert in_order.alert.score == assess(RULES.scoring, [e.scored() for e in in_order.events]).score


@settings(max_examples=150, deadline=None)
@given(events=events_of_a_child, data=st.data())
def test_two_records_merged_give_the_alert_one_record_would_have(events: list[EventFacts],
                                                                  data: st.DataObject) -> None:
    """A child first seen as two persons (a missed link, later merged): the merged alert holds and
    rates what one person receiving every event would have."""
    split = data.draw(st.sets(st.sampled_from([e.event_id for e in events])))
    first = arrive([e for e in events if e.event_id in split], "person-1")
    second = arrive([e for e in events if e.event_id not in split], "person-2")
    merged, _ = absorb(first, "person-1", "person-2", second, RULES, now_ms=BASE + 100)
    together = arrive(sorted(events, key=lambda e: e.occurred_ms))
    assert (merged.alert is None) == (together.alert is None)
    if merged.alert is not None and together.alert is not None:
        assert set(merged.alert.event_ids) == set(together.alert.event_ids)
        assert merged.alert.rag == together.alert.rag


def test_a_concern_that_arrived_before_the_alert_was_raised_is_in_it_and_rates_it() -> None:
    """Police's domestic abuse incident 40 days before a health attendance and a school concern
    arrives first and raises nothing alone; the two later events raise the alert. The incident is
    part of the picture the triage worker needs, and its weight counts, as if it had come last."""
    incident = EventFacts("police", "POLICE", 0, ("domestic-abuse-children-present",))
    later = [EventFacts("health", "HEALTH", 40 * DAY, ("emergency-attendance-safeguarding-flag",)),
             EventFacts("school", "EDUCATION", 41 * DAY, ("school-safeguarding-concern",))]
    first = arrive([incident, *later])
    last = arrive([*later, incident])
    assert first.alert is not None and last.alert is not None
    assert set(first.alert.event_ids) == set(last.alert.event_ids) == {"police", "health", "school"}
    assert first.alert.rag == last.alert.rag and "domestic-abuse-children-present" in first.alert.indicators


def windows_tried_one_by_one(events: list[Scored], holding: set[int]) -> list[Scored] | None:
    """What the sliding search must equal: every start, each window assessed afresh."""
    span = RULES.window_ms
    for start in sorted({e.occurred_ms for e in events}):
        window = sorted((e for e in events if start <= e.occurred_ms <= start + span), key=lambda e: e.occurred_ms)
        if any(id(e) in holding for e in window) and assess(RULES.scoring, window).rag is not None:
            return window
    return None


@settings(max_examples=400, deadline=None)
@given(events=events_of_a_child, data=st.data())
def test_the_sliding_window_search_finds_what_assessing_every_window_finds(events: list[EventFacts],
                                                                             data: st.DataObject) -> None:
    scored = [Scored(e.agency, e.occurred_ms, e.indicators) for e in events]
    holding = {id(e) for e in data.draw(st.lists(st.sampled_from(scored), max_size=3))}
    found = first_scoring_window(RULES.scoring, scored, lambda s: s, RULES.window_ms, lambda s: id(s) in holding)
    expected = windows_tried_one_by_one(scored, holding)
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert {id(e) for e in found} == {id(e) for e in expected}
