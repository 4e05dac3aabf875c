"""Adversarial tests of living records (envelope v3, revisions, withdrawals, decisions on what was
seen, batch isolation): each guards a defect an adversarial review found, and failed before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import Base, TimelineEventRecord
from services.messages import InMessage, OutMessage
from services.triage.correlation import PersonState, absorb, close, correlate, leave
from services.triage.stage import SHARED_SCHEMA, Triage, _Item, _Written
from services.triage.state_store import Held, StaleState
from services.triage_store.store import RowMoved, TriageStore
from tests.unit.test_correlation import BASE, DAY, HOUR, RULES
from tests.unit.test_living_records import HIGH, feed, revision

PPN = "police.public_protection_notification"
NAMES = ["subject.given_name", "subject.family_name", "payload.risk_grading"]
ROLES = ["mash_social_worker", "mash_police_officer", "mash_health_practitioner", "triage_manager"]


def shared(event_id: str, person: str, record: str, revised_ms: int, grading: str, *, withdrawn: bool = False,
           received_ms: int | None = None, given: str = "Ava") -> dict[str, Any]:
    """A shared event (mash.shared.v1 shape) of one revision of a police PPN."""
    received = received_ms if received_ms is not None else revised_ms
    return {"event_id": event_id, "person_id": person, "event_type": PPN, "source_agency": "POLICE",
            "occurred_at": BASE, "received_at": received, "sensitivity": "STANDARD", "consent": "NOT_SOUGHT",
            "policy_version": "f" * 64, "audit_ref": "p0:1",
            "values": json.dumps({"subject": {"given_name": given, "family_name": "Lowe"},
                                  "payload": {"risk_grading": grading, "incident_type": "CHILD_AT_RISK"}}),
            "views": [{"role": r, "outcome": "SHARE_FIELDS", "fields": NAMES} for r in ROLES],
            "record_id": record, "revision": f"sha256:{event_id}",
            "revised_at": datetime.fromtimestamp(revised_ms / 1000, UTC), "withdrawn": withdrawn}


def _item(record: dict[str, Any]) -> _Item:
    return _Item(InMessage("t", 0, 0, b"k", b""), record, SHARED_SCHEMA)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'attack.db'}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


# -- correlation: re-ordering and content that comes back ---------------------------------------------


def test_a_revised_at_far_in_the_future_cannot_freeze_a_record() -> None:
    """Fixed (hostile revised_at): nothing bounds revised_at (not parse_revised_at, not the
    triage stage). One revision claiming updated_at 9999-12-31 makes every later real revision of
    the record STALE_REVISION: a PPN re-graded HIGH today is ignored. The hub should bound
    revised_at by when the record was received (or the connector refuse it)."""
    triage = Triage(Codec(), RULES)
    future = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)
    state, _ = triage.process(PersonState(), shared("f1", "A", "R-F", future, "MEDIUM", received_ms=BASE), BASE)
    state, out = triage.process(state, shared("f2", "A", "R-F", BASE + HOUR, "HIGH"), BASE + HOUR)
    outcomes = [dict(m.headers)["mash.outcome"] for m in out if "mash.outcome" in dict(m.headers)]
    assert state.alert is not None and state.alert.rag == "RED", f"the re-grade to HIGH was ignored: {outcomes}"


def test_a_revision_time_years_ahead_is_held_to_when_the_connector_read_the_record() -> None:
    """A hostile or broken updated_at ('9999-12-31') must not become the record's order key: the
    SDK holds it to the read time (plus a source clock's allowance), so later revisions still win."""
    from connectors.registry import build_connector

    connector = build_connector("police", Path("/nonexistent"))
    from tests.integration.test_living_records import ppn

    fields = ppn("PPN-F", "A", "HIGH", "9999-12-31T23:59:59Z")
    read = datetime(2026, 11, 10, 12, tzinfo=UTC)
    envelope = connector.to_event(connector.map(fields), received_at=read)["envelope"]
    assert envelope["revised_at"] <= read.replace(minute=5)


# -- records that moved person -----------------------------------------------------------------------


def test_an_older_revision_arriving_late_for_the_child_the_record_left_is_stale_there() -> None:
    """Fixed (re-ordering across persons): the shared topic is keyed by person, so revisions of a
    record re-linked to another child travel on different partitions. If the newer revision (rev2,
    linked to B) is triaged first and the older one (rev1, linked to A, graded HIGH) arrives after,
    A holds no revision of the record, so rev1 is NEW and live for A and raises a RED alert; leave()
    on B only refuses to roll B back. rev1 is stale: it should be STALE_REVISION and score nothing."""
    triage = Triage(Codec(), RULES)
    triage._linked = {"R-1": ("A", "B")}  # enrichment linked rev1 to A and rev2 to B
    held = {"A": Held(PersonState(), 0), "B": Held(PersonState(), 0)}
    triage._handle(held, _item(shared("rev2", "B", "R-1", BASE + 2 * HOUR, "MEDIUM")), _Written(), BASE + 3 * HOUR)
    out = triage._handle(held, _item(shared("rev1", "A", "R-1", BASE + HOUR, "HIGH")), _Written(), BASE + 4 * HOUR)
    outcomes = [dict(m.headers)["mash.outcome"] for m in out if "mash.outcome" in dict(m.headers)]
    assert outcomes == [b"STALE_REVISION"], f"a stale revision for A was {outcomes}"
    assert held["A"].state.alert is None, f"A got a {held['A'].state.alert and held['A'].state.alert.rag} alert"


def test_a_merge_keeps_only_the_latest_revision_of_a_record_live() -> None:
    """Fixed (merge x revisions): absorb joins the two histories by event id only; if each person
    holds a live revision of the same record (as the late-stale case above leaves them), both stay
    live after the merge and the record is scored twice. The merged history should keep one live
    revision per record: the latest."""
    a, _ = feed([revision("rev1", "R-1", 1, HIGH)])
    b, _ = feed([revision("rev2", "R-1", 2)])
    merged, _ = absorb(b, "B", "A", a, RULES, BASE + DAY)
    live = [e.event_id for e in merged.events if e.live and e.record == "R-1"]
    assert live == ["rev2"], f"live revisions of R-1 after the merge: {live}"


def test_a_record_that_moved_to_another_child_takes_its_reasons_with_it() -> None:
    """Fixed (re-link): leave() re-scores on what stays with the child but keeps
    `assessment.reasons or alert.reasons`: with nothing left, child A's alert still gives as its
    reason the PPN that now belongs to child B, while its indicators say () ."""
    first, _ = feed([revision("p1", "P-1", 1, HIGH)])
    _, alert = leave(first, "P-1", revision("p2", "P-1", 2, HIGH), RULES, BASE + DAY)
    assert alert is not None
    assert alert.indicators == ()
    assert not any("high risk" in r for r in alert.reasons), f"A's alert still says: {alert.reasons}"


# -- decisions on what was seen ----------------------------------------------------------------------


def test_a_withdrawal_the_decision_had_not_seen_opens_no_follow_up_alert() -> None:
    """Fixed (close/_follow_up): the police withdraw the only PPN (entered in error) while a
    worker decides the RED alert at revision 1. The decision arrives, the withdrawal joined at
    revision 2, so it is 'unseen' and a new OPEN RED alert is raised holding nothing but the
    withdrawal ('rated as urgently as the decided one'). Nothing live is unseen: the decision should
    close the alert and raise no follow-up (at most note the withdrawal)."""
    state, _ = feed([revision("p1", "P-1", 1, HIGH)])
    assert state.alert is not None
    decided, seen = state.alert.alert_id, state.alert.revision
    state, _ = correlate(state, "p", revision("p1w", "P-1", 2, withdrawn=True), RULES, BASE + HOUR)
    state, changed = close(state, decided, BASE + DAY, RULES, seen, "p")
    opened = [(a.status, a.rag, a.event_ids) for a in changed if a.status == "OPEN"]
    assert opened == [], f"a follow-up alert was opened for a withdrawal: {opened}"


def test_a_downward_revision_the_decision_had_not_seen_opens_no_red_follow_up() -> None:
    """Fixed (close/_follow_up): the PPN is re-graded down (HIGH -> not high) after the worker
    looked at the RED alert; their decision then raises a fresh RED alert, due at the decided
    alert's (already running) deadline, for a revision that lowers the risk and scores 30."""
    state, _ = feed([revision("p1", "P-1", 1, HIGH)])
    assert state.alert is not None
    decided, seen = state.alert.alert_id, state.alert.revision
    state, _ = correlate(state, "p", revision("p2", "P-1", 2), RULES, BASE + HOUR)
    state, changed = close(state, decided, BASE + DAY, RULES, seen, "p")
    red = [a.event_ids for a in changed if a.status == "OPEN" and a.rag == "RED"]
    assert red == [], f"a RED follow-up was opened on a lowered revision: {red}"


# -- batch isolation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [StaleState("another worker saved A"), RowMoved("the app re-rated it")])
def test_isolation_retries_whole_when_triage_gives_up_on_contention(error: Exception) -> None:
    """Fixed (isolation): after MAX_ATTEMPTS the triage stage re-raises StaleState / RowMoved
    (another writer's rows, not the messages' fault). infrastructure() does not know them, so the
    batch is split and every good message dead-lettered. They should go to the guard, unsplit."""
    from services.hub.isolation import isolating

    def process(batch: list[InMessage]) -> list[OutMessage]:
        raise error

    run = isolating(process, lambda m, e: OutMessage("dead", m.key, b"", []), "triage")
    batch = [InMessage("t", 0, n, b"k", b"") for n in range(4)]
    with pytest.raises(type(error)):
        dead = run(batch)
        pytest.fail(f"{len(dead)} good messages dead-lettered for another writer's contention")


def test_isolation_retries_whole_when_sharing_loses_the_chain_head_race() -> None:
    """The sharing stage, losing its chain head to another worker MAX_ATTEMPTS times, must say
    contention (so the guard retries the batch whole), not a data error to split and dead-letter."""
    from sqlalchemy.exc import IntegrityError

    from mash.codec import Codec
    from services.hub.isolation import infrastructure
    from services.sharing.stage import Sharer

    class Orig(Exception):
        sqlstate = "23505"

    class Racing:
        def begin(self) -> None:
            raise IntegrityError("INSERT INTO audit_records", {}, Orig("duplicate key (chain, seq)"))

    sharer = Sharer(Codec(), Racing(), None)  # type: ignore[arg-type]
    with pytest.raises(Exception) as raised:
        sharer._record([object()], "v")  # type: ignore[list-item]
    assert infrastructure(raised.value), type(raised.value).__name__


# -- the store and the app: what a superseded revision still shows ----------------------------------


def test_the_alert_page_gives_reasons_only_from_revisions_that_stand(sessions: sessionmaker[Session]) -> None:
    """Fixed (page reasons): alert_page re-derives the reasons a role sees from every timeline row
    whose event id is in the alert. The alert keeps the ids of superseded revisions and of the
    withdrawal (which keeps its values), so after the police withdraw their HIGH PPN the page still
    says 'police graded the incident high risk', though the hub's indicators are () ."""
    from services.triage.scoring_file import load_scoring
    from services.triage_app.accounts import User
    from services.triage_app.queue import alert_page

    rev1 = shared("00000000-0000-0000-0000-000000000001", "A", "R-1", BASE, "HIGH")
    rev2 = shared("00000000-0000-0000-0000-000000000002", "A", "R-1", BASE + HOUR, "HIGH", withdrawn=True)
    alert = {"alert_id": "alert-1", "person_id": "A", "revision": 2, "status": "OPEN", "rag": "RED",
             "reasons": [], "agencies": ["POLICE"], "event_ids": [rev1["event_id"], rev2["event_id"]],
             "opened_at": BASE, "updated_at": BASE + HOUR, "score": 110, "indicators": [],
             "scoring_version": "s", "profile": "p", "clock_started_at": BASE, "at_risk_at": BASE + HOUR,
             "due_at": BASE + 2 * HOUR, "review": "revised downward: review (police record withdrawn)",
             "joined": [1, 2], "follows": None}
    TriageStore(sessions).apply([alert], [], [rev1, rev2])
    manager = User("mo", "Mo", "triage_manager", "triage_manager")
    with sessions() as session:
        page = alert_page(session, manager, "alert-1", load_scoring(), datetime.now(UTC))
    assert not any("high risk" in r for r in page.reasons), f"the page still gives: {page.reasons}"


def test_the_alert_page_says_what_each_revision_amended_in_the_role_s_view(sessions: sessionmaker[Session]) -> None:
    from services.triage.scoring_file import load_scoring
    from services.triage_app.accounts import User
    from services.triage_app.queue import alert_page

    rev1 = shared("00000000-0000-0000-0000-000000000011", "A", "R-2", BASE, "STANDARD")
    rev2 = shared("00000000-0000-0000-0000-000000000012", "A", "R-2", BASE + HOUR, "HIGH")
    alert = {"alert_id": "alert-2", "person_id": "A", "revision": 2, "status": "OPEN", "rag": "RED",
             "reasons": [], "agencies": ["POLICE"], "event_ids": [rev1["event_id"], rev2["event_id"]],
             "opened_at": BASE, "updated_at": BASE + HOUR, "score": 110, "indicators": [],
             "scoring_version": "s", "profile": "p", "clock_started_at": BASE, "at_risk_at": BASE + HOUR,
             "due_at": BASE + 2 * HOUR, "review": None, "joined": [1, 2], "follows": None}
    TriageStore(sessions).apply([alert], [], [rev1])
    TriageStore(sessions).apply([], [], [rev2])
    with sessions() as session:
        page = alert_page(session, User("mo", "Mo", "triage_manager", "triage_manager"), "alert-2",
                          load_scoring(), datetime.now(UTC))
    amended = {e.event_id: e.amended for e in page.timeline}
    assert amended == {rev1["event_id"]: "", rev2["event_id"]: "police amended: risk grading STANDARD -> HIGH"}


def test_a_revision_re_linked_to_another_child_leaves_nothing_on_the_first_childs_timeline(
        sessions: sessionmaker[Session]) -> None:
    """Fixed (privacy, judgment): rev2 of a record is linked to child B (a corrected identifier:
    the record is about B). _supersede prunes rev1 only to what rev2 shares, and rev1 stays on
    child A's timeline, so whoever opens A's alert still reads the record (names, grading) that is
    now known to be about B. A revision superseded by one about another child should be withheld
    from the first child (views emptied) or leave A's timeline."""
    rev1 = shared("00000000-0000-0000-0000-00000000000a", "A", "R-9", BASE, "HIGH", given="Ben")
    rev2 = shared("00000000-0000-0000-0000-00000000000b", "B", "R-9", BASE + HOUR, "HIGH", given="Ben")
    store = TriageStore(sessions)
    store.apply([], [], [rev1])
    store.apply([], [], [rev2])
    with sessions() as session:
        row = session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.event_id == rev1["event_id"])).one()
    assert row.person_id == "A" and row.superseded_by == rev2["event_id"]
    assert all(not fields for fields in row.views.values()), f"A's timeline still shows {row.views} of {row.values}"


def test_a_record_changed_and_changed_back_is_three_revisions_where_the_source_stamps_them() -> None:
    """A PPN graded STANDARD, re-graded HIGH, then back to STANDARD: with content alone naming the
    revision, the third was the first's event id again (a duplicate), and the record stayed HIGH.
    The source's own updated_at is part of the revision; the same stamp sent again is still a duplicate."""
    from connectors.registry import build_connector
    from tests.integration.test_living_records import ppn

    connector = build_connector("police", Path("/nonexistent"))
    read = datetime(2026, 11, 11, 12, tzinfo=UTC)

    def event_id(grading: str, updated_at: str | None) -> str:
        fields = ppn("PPN-R", "A", grading, updated_at)
        return str(connector.to_event(connector.map(fields), received_at=read)["envelope"]["event_id"])

    first = event_id("STANDARD", "2026-11-10T10:00:00Z")
    regraded = event_id("HIGH", "2026-11-10T11:00:00Z")
    back = event_id("STANDARD", "2026-11-10T12:00:00Z")
    assert len({first, regraded, back}) == 3
    assert event_id("STANDARD", "2026-11-10T10:00:00Z") == first  # resent as it was: a duplicate
    assert event_id("STANDARD", None) == event_id("STANDARD", None)  # no stamp: content names it
