"""Records live: revisions, late revisions, withdrawals and decisions on what was seen, in
correlation (pure: no broker, no database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.triage.correlation import EventFacts, PersonState, close, correlate
from tests.unit.test_correlation import BASE, DAY, HOUR, RULES

HIGH, DOMESTIC = ("police-high-risk",), ("domestic-abuse-children-present",)


def revision(event_id: str, record: str, revised_ms: int, indicators: tuple[str, ...] = (), *,
             agency: str = "POLICE", occurred_ms: int = 0, withdrawn: bool = False) -> EventFacts:
    return EventFacts(event_id, agency, occurred_ms, indicators, record, revised_ms, withdrawn)


def feed(events: list[EventFacts], state: PersonState | None = None) -> tuple[PersonState, list[tuple[str, str]]]:
    state = state or PersonState()
    seen = []
    for n, event in enumerate(events):
        state, decision = correlate(state, "p", event, RULES, now_ms=BASE + n * HOUR)
        seen.append((decision.outcome, decision.kind))
    return state, seen


def test_a_ppn_regraded_high_is_scored_as_a_revision_and_raises_a_red_alert() -> None:
    state, seen = feed([revision("a1", "PPN-A", 1), revision("a2", "PPN-A", 2, HIGH)])
    assert seen == [("NO_ALERT", "NEW"), ("ALERT_RAISED", "REVISION")]
    assert state.alert is not None and state.alert.rag == "RED" and state.alert.event_ids == ("a2",)


def test_an_older_revision_arriving_after_a_newer_one_is_recorded_and_ignored() -> None:
    state, seen = feed([revision("a2", "PPN-A", 2, HIGH), revision("a1", "PPN-A", 1)])
    assert seen == [("ALERT_RAISED", "NEW"), ("STALE_REVISION", "REVISION")]
    assert state.alert is not None and state.alert.rag == "RED" and state.alert.review is None
    again, decision = correlate(state, "p", revision("a1", "PPN-A", 1), RULES, now_ms=BASE + DAY)
    assert decision.duplicate and decision.outcome == "STALE_REVISION" and again == state


def test_a_revision_that_lowers_the_risk_keeps_the_rating_and_asks_a_person_to_re_rate() -> None:
    state, _ = feed([revision("a1", "PPN-A", 1, HIGH), revision("a2", "PPN-A", 2)])
    assert state.alert is not None and state.alert.rag == "RED"
    assert state.alert.review is not None and state.alert.review.startswith("revised downward: review")
    assert "no longer police-high-risk" in state.alert.review and "a2" in state.alert.event_ids


def test_a_withdrawn_record_leaves_scoring_and_the_alert_says_so() -> None:
    state, seen = feed([revision("a1", "PPN-A", 1, HIGH), revision("a2", "PPN-A", 2, withdrawn=True)])
    assert seen[1] == ("ATTACHED_TO_ALERT", "WITHDRAWAL")
    assert state.alert is not None and "withdrawn (entered in error)" in (state.alert.review or "")
    after, _ = feed([revision("h1", "H-1", 3, ("emergency-attendance-safeguarding-flag",), agency="HEALTH")])
    assert after.alert is None  # a withdrawn record adds nothing to the child's score
    assert [e.event_id for e in state.events if e.live] == []


def test_the_same_content_sent_again_is_a_duplicate() -> None:
    state, _ = feed([revision("a1", "PPN-A", 1, HIGH)])
    again, decision = correlate(state, "p", revision("a1", "PPN-A", 5, HIGH), RULES, now_ms=BASE + DAY)
    assert decision.duplicate and again == state


def test_a_decision_covers_the_revision_seen_and_what_attached_since_opens_a_new_alert() -> None:
    state, _ = feed([revision("p1", "P-1", 1, HIGH)])
    assert state.alert is not None
    seen_revision, decided_id = state.alert.revision, state.alert.alert_id
    state, _ = feed([revision("h1", "H-1", 2, ("emergency-attendance-injury-pattern",), agency="HEALTH")], state)
    state, (closed, follow) = close(state, decided_id, BASE + DAY, RULES, seen_revision, "p")
    assert (closed.status, closed.event_ids) == ("CLOSED", ("p1",))
    assert (follow.status, follow.event_ids, follow.follows) == ("OPEN", ("h1",), decided_id)
    assert state.alert == follow


def test_a_decision_on_the_current_revision_closes_the_alert_and_a_later_event_opens_one_that_follows() -> None:
    state, _ = feed([revision("p1", "P-1", 1, HIGH)])
    assert state.alert is not None
    decided = state.alert.alert_id
    state, (closed,) = close(state, decided, BASE + DAY, RULES, state.alert.revision, "p")
    assert closed.status == "CLOSED"
    state, seen = feed([revision("e1", "E-1", 2, ("attendance-drop",), agency="EDUCATION", occurred_ms=DAY)], state)
    assert seen == [("ALERT_RAISED", "NEW")]
    assert state.alert is not None and state.alert.event_ids == ("e1",) and state.alert.follows == decided


def test_a_decision_on_an_alert_absorbed_by_a_merge_closes_the_survivors_alert() -> None:
    from services.triage.correlation import absorb

    retired, _ = feed([revision("p1", "P-1", 1, HIGH)])
    survivor, _ = feed([revision("e1", "E-1", 1, ("missing-education",), agency="EDUCATION"),
                        revision("c1", "C-1", 1, agency="SOCIAL_CARE")])
    assert retired.alert is not None and survivor.alert is not None
    merged, _ = absorb(survivor, "s", "r", retired, RULES, now_ms=BASE + DAY)
    assert merged.alert is not None and merged.alert.status == "OPEN"
    _, changed = close(merged, retired.alert.alert_id, BASE + 2 * DAY, RULES, retired.alert.revision, "s")
    assert changed[0].alert_id == survivor.alert.alert_id and changed[0].status == "CLOSED"
    assert [a.event_ids for a in changed[1:]] == [tuple(e for e in merged.alert.event_ids if e != "p1")]


RECORDS = ("R1", "R2", "R3")
INDICATOR_SETS = ((), HIGH, DOMESTIC, ("child-at-risk-or-exploited",))


@st.composite
def revisions(draw: st.DrawFn) -> list[EventFacts]:
    """Several revisions of a few police records, each with its own order, arriving in any order."""
    events = []
    for record in RECORDS:
        for n in range(draw(st.integers(1, 4))):
            withdrawn = n > 0 and draw(st.booleans()) and draw(st.booleans())
            indicators = () if withdrawn else draw(st.sampled_from(INDICATOR_SETS))
            events.append(revision(f"{record}-{n}", record, n + 1, indicators, occurred_ms=DAY, withdrawn=withdrawn))
    return list(draw(st.permutations(events)))


@settings(max_examples=300, deadline=None)
@given(revisions())
def test_any_interleaving_of_revisions_ends_where_the_latest_revisions_alone_would_never_lower_unseen(
        events: list[EventFacts]) -> None:
    state, _ = feed(events)
    latest = {}
    for event in events:
        if event.record not in latest or event.revised_ms > latest[event.record].revised_ms:
            latest[event.record] = event
    alone, _ = feed(sorted(latest.values(), key=lambda e: e.record))
    assert {e.record: e.event_id for e in state.events if e.superseded_by is None} == \
           {r: e.event_id for r, e in latest.items()}
    assert sorted(e.event_id for e in state.events if e.live) == sorted(e.event_id for e in alone.events if e.live)
    rank = {"RED": 0, "AMBER": 1, "GREEN": 2, None: 3}
    final = state.alert.rag if state.alert else None
    expected = alone.alert.rag if alone.alert else None
    assert rank[final] <= rank[expected]  # never less urgent than the records as they stand
    if rank[final] < rank[expected]:  # more urgent only because an earlier revision said so: flagged
        assert state.alert is not None and state.alert.review is not None


def test_a_record_re_linked_to_another_child_leaves_the_first_childs_scoring_and_asks_for_a_re_rating() -> None:
    from services.triage.correlation import leave

    first, _ = feed([revision("p1", "P-1", 1, HIGH)])
    assert first.alert is not None and first.alert.rag == "RED"
    moved = revision("p2", "P-1", 2, HIGH)  # the corrected NHS number put the revision with another child
    state, alert = leave(first, "P-1", moved, RULES, BASE + DAY)
    assert alert is not None and alert.rag == "RED" and "re-linked a record to another child" in (alert.review or "")
    assert [e.event_id for e in state.events if e.live] == []
    older = revision("p0", "P-1", 0, HIGH)  # an older revision linked elsewhere takes nothing from here
    assert leave(first, "P-1", older, RULES, BASE + DAY) == (first, None)
