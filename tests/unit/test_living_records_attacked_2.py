"""Second adversarial review of living records: revision stamps, identifiers released by a
revision, audit entries that name their place, amendments and withdrawn fields on the timeline.

A test that FAILS names a defect (its docstring says what is wrong and what should happen); a test
that passes is an attack that held and is kept as a regression test. Everything runs in process
on SQLite (tmp_path): no broker."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, delete, func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from mash.models import (
    Base,
    LinkDecisionRecord,
    PersonIdentifier,
    PersonMerge,
    RecordIdentifier,
    RecordLink,
    TimelineEventRecord,
)
from services.enrichment.comparisons import Profile
from services.enrichment.linking import Identifier
from services.enrichment.person_index import EventToLink, PersonIndex
from services.triage_app.accounts import User
from services.triage_store.store import TriageStore

NHS = Identifier("nhs", "9434765919")
OTHER_NHS = Identifier("nhs", "9434765870")
UPN = Identifier("upn", "B801200005001")
DAY_MS = 86_400_000
NOBODY = Profile()
OLGA = Profile("OLGA", "PRICE", date(2011, 1, 20), "F", "LS22AB")
ASHA = Profile("ASHA", "KHAN", date(2015, 3, 4), "F", "LS61AB")

POLICE_OFFICER, SOCIAL_WORKER, MANAGER = "mash_police_officer", "mash_social_worker", "triage_manager"
PPN = "police.public_protection_notification"
T0 = datetime(2026, 11, 10, 10, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    made = create_engine(f"sqlite:///{tmp_path / 'attack2.db'}")
    Base.metadata.create_all(made)
    return made


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# =====================================================================================================
# 1. The person index: identifiers released by a revision, stale revisions, batches, redelivery
# =====================================================================================================


def link(event_id: str, *identifiers: Identifier, profile: Profile = NOBODY, day: int = 100,
         agency: str = "POLICE", **extra: Any) -> EventToLink:
    return EventToLink(event_id, agency, list(identifiers), profile, day * DAY_MS, **extra)


def owner(engine: Engine, identifier: Identifier) -> str | None:
    with engine.connect() as db:
        return db.scalar(select(PersonIdentifier.person_id).where(PersonIdentifier.scheme == identifier.scheme,
                                                                  PersonIdentifier.value == identifier.value))


def merges(engine: Engine) -> int:
    with engine.connect() as db:
        return int(db.scalar(select(func.count()).select_from(PersonMerge)) or 0)


def standing(engine: Engine, record_id: str) -> tuple[str, str] | None:
    with engine.connect() as db:
        row = db.execute(select(RecordLink.event_id, RecordLink.person_id)
                         .where(RecordLink.record_id == record_id)).one_or_none()
    return None if row is None else (row[0], row[1])


def test_an_identifier_asserted_by_records_linked_before_the_upgrade_is_not_released(engine: Engine,
                                                                                     sessions: sessionmaker[Session]
                                                                                     ) -> None:
    """DEFECT (migration 0005 / released_by_revision): the index decides whether a revision may
    release an identifier by asking record_identifiers which other records assert it. Migration 0005
    creates record_links and record_identifiers EMPTY: every record linked before the upgrade asserts
    nothing as far as the index knows. So on an upgraded hub, a police record that carried a
    child's NHS number (linked after the upgrade) and is then corrected releases that NHS number
    although the child's own health records (linked before the upgrade) assert it: the number is
    deleted from the child, and the child's next health attendance starts a new person (a missed
    link, the classic failure). Expected: identifiers held by persons whose asserting records are
    unknown (pre-0005 rows, or link_decisions / person_identifiers.first_seen_event_id of another
    record) are not released; or the migration backfills record_identifiers."""
    index = PersonIndex(sessions)
    child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                    record_id="H-1", revised_ms=1)])
    with sessions.begin() as session:  # as migration 0005 leaves a database upgraded from 0004
        session.execute(delete(RecordIdentifier))
        session.execute(delete(RecordLink))
    subject = Identifier("local", "POLICE:P-1")
    wrong, = index.link_batch([link("p1", NHS, subject, record_id="PPN-1", revised_ms=10)])
    assert wrong.decision.person_id == child.decision.person_id
    index.link_batch([link("p2", OTHER_NHS, subject, record_id="PPN-1", revised_ms=20)])
    assert owner(engine, NHS) == child.decision.person_id, "the child's own NHS number was released"
    again, = index.link_batch([link("h2", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                    record_id="H-2", revised_ms=30)])
    assert again.decision.person_id == child.decision.person_id


def test_two_revisions_of_one_record_in_one_batch_correct_the_link_and_write_one_standing(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Held: the wrong revision and its correction in ONE batch (record_links written mid-batch by
    the release's flush, then again at the end: no primary-key conflict); the record stands at the
    correction with the right child, the wrong number stays with its own child, nobody merged."""
    index = PersonIndex(sessions)
    subject = Identifier("local", "POLICE:P-2")
    other_child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                          record_id="H-1", revised_ms=1)])
    right_child, = index.link_batch([link("h2", OTHER_NHS, Identifier("local", "HEALTH:2"), agency="HEALTH",
                                          record_id="H-2", revised_ms=1)])
    wrong, corrected, again = index.link_batch([
        link("p1", NHS, subject, record_id="PPN-2", revised_ms=10),
        link("p2", OTHER_NHS, subject, record_id="PPN-2", revised_ms=20),
        link("p3", OTHER_NHS, subject, record_id="PPN-2", revised_ms=30)])  # re-graded: same identifiers
    assert wrong.decision.person_id == other_child.decision.person_id
    assert corrected.decision.person_id == again.decision.person_id == right_child.decision.person_id
    assert corrected.decision.merge == () and merges(engine) == 0
    assert owner(engine, NHS) == other_child.decision.person_id
    assert owner(engine, subject) == right_child.decision.person_id
    assert standing(engine, "PPN-2") == ("p3", right_child.decision.person_id)
    with engine.connect() as db:
        asserted = set(db.execute(select(RecordIdentifier.scheme, RecordIdentifier.value)
                                  .where(RecordIdentifier.record_id == "PPN-2")).all())
    assert asserted == {("nhs", OTHER_NHS.value), ("local", subject.value)}


def test_a_revision_and_its_stale_predecessor_in_one_batch(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Held: the correction first, the original (wrong number) after it in the same batch: the
    original follows the record, attaches nothing, proves no merge, and the record stands at the
    correction."""
    index = PersonIndex(sessions)
    subject = Identifier("local", "POLICE:P-3")
    other_child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                          record_id="H-1", revised_ms=1)])
    newer, older = index.link_batch([link("p2", OTHER_NHS, subject, record_id="PPN-3", revised_ms=20),
                                     link("p1", NHS, subject, record_id="PPN-3", revised_ms=10)])
    assert older.decision.person_id == newer.decision.person_id != other_child.decision.person_id
    assert older.decision.attach == () and older.decision.merge == () and merges(engine) == 0
    assert standing(engine, "PPN-3") == ("p2", newer.decision.person_id)
    with engine.connect() as db:
        evidence = db.scalar(select(LinkDecisionRecord.evidence).where(LinkDecisionRecord.event_id == "p1"))
    assert evidence is not None and evidence["stale_revision"] is True and evidence["latest_revision"] == "p2"


def test_a_redelivered_batch_that_released_an_identifier_gives_the_same_decisions_and_releases_nothing_more(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Held (idempotency): the batch holding a correction is redelivered (committed, offset not):
    same persons, methods, no second release, the record's standing unchanged; a later unrelated
    revision arriving beside the redelivered one is linked afresh."""
    index = PersonIndex(sessions)
    subject = Identifier("local", "POLICE:P-4")
    other_child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                          record_id="H-1", revised_ms=1)])
    index.link_batch([link("p1", NHS, subject, record_id="PPN-4", revised_ms=10)])
    batch = [link("p2", OTHER_NHS, subject, record_id="PPN-4", revised_ms=20)]
    first = index.link_batch(batch)
    with engine.connect() as db:
        identifiers = sorted(db.execute(select(PersonIdentifier.scheme, PersonIdentifier.value,
                                               PersonIdentifier.person_id)).all())
        decisions = db.scalar(select(func.count()).select_from(LinkDecisionRecord))
    second = index.link_batch(batch)
    assert [(r.decision.person_id, r.decision.method) for r in first] == \
        [(r.decision.person_id, r.decision.method) for r in second]
    assert second[0].redelivered
    with engine.connect() as db:
        assert sorted(db.execute(select(PersonIdentifier.scheme, PersonIdentifier.value,
                                        PersonIdentifier.person_id)).all()) == identifiers
        assert db.scalar(select(func.count()).select_from(LinkDecisionRecord)) == decisions
    assert standing(engine, "PPN-4") == ("p2", first[0].decision.person_id)
    assert owner(engine, NHS) == other_child.decision.person_id
    redelivered, later = index.link_batch([*batch, link("p3", OTHER_NHS, subject, record_id="PPN-4",
                                                        revised_ms=30)])
    assert redelivered.redelivered and not later.redelivered
    assert later.decision.person_id == first[0].decision.person_id and later.decision.method == "NHS_NUMBER"


def test_a_merge_mid_batch_then_revisions_of_a_record_that_stood_with_the_retired_person(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Held: record PPN-5 stands with child B (by its UPN). In one batch, a social care record
    carrying both A's NHS number and B's UPN merges the two; then a stale revision of PPN-5 and a
    re-grading of it arrive. Both go to the survivor, never to the retired person."""
    index = PersonIndex(sessions)
    a, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH", record_id="H-1",
                                revised_ms=1)])
    b, = index.link_batch([link("e1", UPN, Identifier("local", "EDUCATION:1"), agency="EDUCATION",
                                record_id="E-1", revised_ms=1)])
    subject = Identifier("local", "POLICE:P-5")
    p1, = index.link_batch([link("p1", UPN, subject, record_id="PPN-5", revised_ms=10)])
    assert p1.decision.person_id == b.decision.person_id
    proof, stale, regraded = index.link_batch([
        link("s1", NHS, UPN, Identifier("local", "SOCIAL_CARE:1"), agency="SOCIAL_CARE", record_id="S-1",
             revised_ms=1),
        link("p0", UPN, subject, record_id="PPN-5", revised_ms=5),
        link("p2", UPN, subject, record_id="PPN-5", revised_ms=20)])
    survivor = proof.decision.person_id
    retired = ({a.decision.person_id, b.decision.person_id} - {survivor}).pop()
    assert proof.decision.merge == (retired,)
    assert stale.decision.person_id == regraded.decision.person_id == survivor
    assert standing(engine, "PPN-5") == ("p2", survivor)


def test_an_identifier_another_record_in_the_same_batch_asserts_is_not_released(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Held: PPN-6 gave a child an NHS number, and is corrected to drop it; in the same batch,
    before the correction, the child's first health record asserts that number. It is not the
    police record's alone any more, so it stays with the child."""
    index = PersonIndex(sessions)
    subject = Identifier("local", "POLICE:P-6")
    p1, = index.link_batch([link("p1", NHS, subject, record_id="PPN-6", revised_ms=10)])
    health, corrected = index.link_batch([
        link("h1", NHS, Identifier("local", "HEALTH:6"), agency="HEALTH", record_id="H-6", revised_ms=1),
        link("p2", subject, record_id="PPN-6", revised_ms=20)])
    assert health.decision.person_id == p1.decision.person_id
    assert corrected.decision.merge == ()  # where the record goes: see the test after this one
    assert owner(engine, NHS) == p1.decision.person_id
    with engine.connect() as db:
        evidence = db.scalar(select(LinkDecisionRecord.evidence).where(LinkDecisionRecord.event_id == "p2"))
    assert evidence is not None
    assert "nhs:" + NHS.value not in list(evidence.get("released", []))  # type: ignore[call-overload]


def test_a_revision_whose_own_identifiers_were_released_is_matched_on_its_profile(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """DEFECT (person index: release x blocking): a revision that changes its identifiers "is linked
    afresh", but _load fetches blocking keys only for events none of whose identifiers was known
    when the batch was loaded. A revision's identifiers were known then (they are released only
    while it is linked), so its candidates are always empty: whenever no strong identifier of it
    is still owned, it starts a NEW person, however exactly it matches. Here the police drop an NHS
    number from a PPN about Asha (all else the same: name, birth date, sex, postcode): its own
    person reference is released and the record leaves Asha for an empty new person (her PPN leaves
    her scoring). Expected: the revision is matched on its profile like any event with no known
    identifier, and links to Asha."""
    index = PersonIndex(sessions)
    subject = Identifier("local", "POLICE:P-10")
    asha, = index.link_batch([link("p1", NHS, subject, profile=ASHA, record_id="PPN-10", revised_ms=10)])
    index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:10"), profile=ASHA, agency="HEALTH",
                           record_id="H-10", revised_ms=1)])
    dropped, = index.link_batch([link("p2", subject, profile=ASHA, record_id="PPN-10", revised_ms=20)])
    assert (dropped.decision.person_id, dropped.decision.method) == (asha.decision.person_id, "PROBABILISTIC"), \
        f"the PPN moved to a {dropped.decision.method} with no candidates: {dropped.decision.match}"


def test_the_person_index_orders_revisions_as_triage_does_when_revised_at_is_far_ahead_of_the_read() -> None:
    """DEFECT (enrichment stage / person index): triage holds a revision's order to
    min(revised_at, received_at + 5 minutes) (services/triage/stage.py, SKEW_MS: "a revision time
    later than this after the read is the source's clock"), but event_to_link takes revised_at as
    it comes. An envelope whose revised_at is years ahead (a source clock, or a producer that is not
    the SDK) makes the person index hold that revision as the record's latest for ever: every real
    later revision (an NHS number corrected) is `_stale` there and is never re-linked, while triage
    takes the same revision as the newer one. Expected: event_to_link bounds revised_ms the same
    way triage does."""
    from connectors.registry import build_connector
    from services.enrichment.stage import event_to_link
    from tests.integration.test_living_records import ppn

    connector = build_connector("police", Path("/nonexistent"))
    read = datetime(2026, 11, 10, 12, tzinfo=UTC)
    event = connector.to_event(connector.map(ppn("PPN-F", "A", "HIGH", "2026-11-10T11:00:00Z")), received_at=read)
    event["envelope"]["revised_at"] = datetime(9999, 12, 31, tzinfo=UTC)  # as an unbounded producer sends it
    linked = event_to_link(event, connector.schema)
    assert linked.revised_ms <= int((read + timedelta(minutes=5)).timestamp() * 1000)


# =====================================================================================================
# 2. The sharing stage: an audit entry names its place among its record's revisions
# =====================================================================================================


def _entry(event_id: str, revised_at: datetime | None, received_at: datetime) -> dict[str, Any]:
    from services.sharing.decision_record import DecisionSet, decision_entry

    header = {"event_id": event_id, "person_id": "A", "event_type": PPN, "source_agency": "POLICE",
              "consent": "NOT_SOUGHT", "record_id": "R-1", "revision": f"sha256:{event_id[-4:]}",
              "revised_at": revised_at, "received_at": received_at, "withdrawn": False}
    return decision_entry(DecisionSet([], "[]", "d" * 64), header, "f" * 64, received_at)


def test_an_entry_without_revised_at_is_placed_by_when_it_was_received_as_every_other_stage_does() -> None:
    """DEFECT (decision_record._order): revised_at is optional in envelope v3 and the shared event
    ("null": the connector's read time stands in). The person index (event_to_link) and triage
    (stage._process) then order revisions by received_at; the triage store too. The audit entry
    orders by `str(revised_at or "")`: a revision with no revised_at sorts before every revision
    that has one, and two without it are ordered by their random event ids. So the audit trail says
    the newer revision is `superseded_by` the older one, the opposite of what the hub did with it.
    Expected: fall back to received_at (or to the order the other stages use)."""
    from services.sharing.decision_record import with_its_place

    older = _entry("ffffffff-0000-0000-0000-000000000001", None, T0)
    newer = _entry("00000000-0000-0000-0000-000000000002", None, T0 + timedelta(hours=1))
    placed = with_its_place(newer, [older])
    assert "superseded_by" not in placed, f"the newer revision is said to be superseded by {placed['superseded_by']}"
    assert placed.get("supersedes", {}).get("event_id") == older["event_id"]


def test_a_stamped_revision_and_a_late_older_one_are_placed_within_a_batch_and_across_batches() -> None:
    """Held: with revised_at stamps (milliseconds, UTC, one format), entries made within a batch
    and read back from the store order alike; an older one arriving late names the newest."""
    from services.sharing.decision_record import with_its_place

    r10 = _entry("00000000-0000-0000-0000-00000000000a", T0, T0)
    r11 = _entry("00000000-0000-0000-0000-00000000000b", T0 + timedelta(milliseconds=1), T0)
    r9 = _entry("ffffffff-0000-0000-0000-000000000009", T0 - timedelta(hours=1), T0 + timedelta(hours=2))
    stored = json.loads(json.dumps(r10))  # as audit_store.of_records gives it back
    assert with_its_place(r11, [stored])["supersedes"]["event_id"] == r10["event_id"]
    late = with_its_place(r9, [stored, with_its_place(r11, [stored])])
    assert late["superseded_by"]["event_id"] == r11["event_id"] and "supersedes" not in late


def test_migration_0005_on_sqlite_keeps_audit_records_append_only(tmp_path: Path) -> None:
    """Held: a database at 0004 holding an audit entry, upgraded to 0005 (ADD COLUMN record_id),
    still refuses UPDATE and DELETE on audit_records (and on the new column), and takes new entries."""
    from mash.db import make_engine, upgrade

    made = make_engine(f"sqlite:///{tmp_path / 'upgraded.db'}")
    upgrade(made, "0004")
    row = "('p0', 1, '', 'h1', 'e1', 'e1/hub:sharing', 'd', '{}')"
    columns = "(chain, seq, prev_hash, hash, event_id, decision_key, decisions_digest, body)"
    with made.begin() as db:
        db.execute(text(f"INSERT INTO audit_records {columns} VALUES {row}"))
    upgrade(made, "0005")
    with made.connect() as db:
        assert db.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0005"
        triggers = set(db.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                       "AND tbl_name = 'audit_records'")))
    assert {"audit_records_no_update", "audit_records_no_delete"} <= triggers
    for statement in ("UPDATE audit_records SET record_id = 'R-1'", "UPDATE audit_records SET body = '{}'",
                      "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match="append-only"), made.begin() as db:
            db.execute(text(statement))
    with made.begin() as db:
        db.execute(text(f"INSERT INTO audit_records {columns[:-1]}, record_id) VALUES "
                        "('p0', 2, 'h1', 'h2', 'e2', 'e2/hub:sharing', 'd', '{}', 'R-1')"))
        assert db.scalar(text("SELECT count(*) FROM audit_records WHERE record_id = 'R-1'")) == 1
        assert db.scalar(text("SELECT count(*) FROM timeline_events WHERE withdrawn_fields IS NOT NULL")) == 0
    made.dispose()


# =====================================================================================================
# 3. The triage store and app: amendments, withdrawn fields, the 409 page
# =====================================================================================================

NAME, GRADING, SUMMARY = "subject.given_name", "payload.risk_grading", "payload.summary"


def eid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def shared(n: int, record: str, revised: datetime | None, views: dict[str, list[str]], *, person: str = "A",
           grading: Any = "STANDARD", given: str = "Ava", summary: Any = "Police attended.",
           withdrawn: bool = False, received: datetime | None = None) -> dict[str, Any]:
    """One revision of a police PPN as mash.shared.v1 carries it: values and, per role, the fields it may see."""
    return {"event_id": eid(n), "person_id": person, "event_type": PPN, "source_agency": "POLICE",
            "occurred_at": T0, "received_at": received or revised or T0, "sensitivity": "STANDARD",
            "consent": "NOT_SOUGHT", "policy_version": "f" * 64, "audit_ref": f"p0:{n}",
            "values": json.dumps({"subject": {"given_name": given, "family_name": "Lowe"},
                                  "payload": {"risk_grading": grading, "summary": summary}}),
            "views": [{"role": r, "outcome": "SHARE_FIELDS", "fields": f} for r, f in views.items()],
            "record_id": record, "revision": f"sha256:{n}", "revised_at": revised, "withdrawn": withdrawn}


def alert_of(person: str, events: list[dict[str, Any]], joined: list[int] | None = None,
             revision: int = 1) -> dict[str, Any]:
    return {"alert_id": f"alert-{person}", "person_id": person, "revision": revision, "status": "OPEN",
            "rag": "RED", "reasons": [], "agencies": ["POLICE"], "event_ids": [e["event_id"] for e in events],
            "opened_at": T0, "updated_at": T0, "score": 80, "indicators": [], "scoring_version": "s",
            "profile": "p", "clock_started_at": T0, "at_risk_at": T0 + timedelta(hours=1),
            "due_at": T0 + timedelta(hours=2), "review": None, "joined": joined or [1] * len(events), "follows": None}


def page_for(sessions: sessionmaker[Session], sharing_role: str, person: str = "A") -> Any:
    from services.triage.scoring_file import load_scoring
    from services.triage_app.queue import alert_page

    role = "triage_manager" if sharing_role == MANAGER else "triage_worker"
    with sessions() as session:
        return alert_page(session, User("u", "U", role, sharing_role), f"alert-{person}", load_scoring(),
                          datetime.now(UTC))


def timeline_row(sessions: sessionmaker[Session], n: int) -> TimelineEventRecord:
    with sessions() as session:
        return session.scalars(select(TimelineEventRecord).where(TimelineEventRecord.event_id == eid(n))).one()


def shown(page: Any, n: int) -> Any:
    return next(e for e in page.timeline if e.event_id == eid(n))


def text_of(event: Any) -> str:
    """Everything the page tells a user about one timeline row."""
    return " ".join(map(str, [event.event_type, event.fields, event.amended, event.note, event.withdrawn_fields]))


ALL = [NAME, GRADING, SUMMARY]


@pytest.mark.parametrize("arrival", ["late", "same batch"])
def test_a_revision_no_role_ever_saw_shows_no_withdrawn_fields(sessions: sessionmaker[Session],
                                                               arrival: str) -> None:
    """DEFECT (store._withdrawn): the police officer may see nothing of the latest revision (rev2,
    consent refused for that role); the older rev1, which the policy shared with the officer,
    arrives AFTER rev2 (late) or in the same batch. rev1 is superseded the moment it is written, so
    no officer ever saw its fields; yet _withdrawn records every field of its original view as
    "withdrawn on <date>", which makes the row no longer `withheld` for the officer: the page now
    shows the event type and the names of the fields of a record the role never saw (before this
    change the row was withheld). README: "withdrawn on <date>" is shown "to a role that saw them,
    nothing to one that did not". Expected: only fields of a row that stood (was on show) when a
    later revision stopped sharing them are marked."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-1", T0, {POLICE_OFFICER: ALL, SOCIAL_WORKER: ALL})
    rev2 = shared(2, "R-1", T0 + timedelta(hours=1), {POLICE_OFFICER: [], SOCIAL_WORKER: ALL})
    if arrival == "late":
        store.apply([alert_of("A", [rev2])], [], [rev2])
        store.apply([], [], [rev1])
    else:
        store.apply([alert_of("A", [rev1, rev2])], [], [rev1, rev2])
    row = timeline_row(sessions, 1)
    assert row.views.get(POLICE_OFFICER) == []
    officer = shown(page_for(sessions, POLICE_OFFICER), 1)
    assert (row.withdrawn_fields or {}).get(POLICE_OFFICER) is None and officer.withheld, \
        f"the officer is shown {officer.event_type} with {officer.withdrawn_fields}"


def test_the_date_a_field_was_withdrawn_is_the_first_revision_that_stopped_sharing_it(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (store._withdrawn): the date is meant to be "the first revision that stopped sharing"
    the field; it is taken from the latest revision of the record. When the consent withdrawal
    (rev2, day 2) and a later re-grading (rev3, day 3) reach the store in one batch, the officer's
    view of rev1 says the name was "withdrawn on" day 3. Expected: day 2."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-2", T0, {POLICE_OFFICER: ALL})
    store.apply([alert_of("A", [rev1])], [], [rev1])
    rev2 = shared(2, "R-2", T0 + timedelta(days=1), {POLICE_OFFICER: [GRADING, SUMMARY]})
    rev3 = shared(3, "R-2", T0 + timedelta(days=2), {POLICE_OFFICER: [GRADING, SUMMARY]}, grading="HIGH")
    store.apply([], [], [rev2, rev3])
    gone = timeline_row(sessions, 1).withdrawn_fields or {}
    assert gone.get(POLICE_OFFICER) == {NAME: (T0 + timedelta(days=1)).date().isoformat()}, gone


def test_an_amendment_does_not_say_a_revision_stopped_sharing_a_field_a_later_one_stopped_sharing(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (views.amendment): rev1 graded STANDARD, rev2 re-graded MEDIUM, both shared with the
    officer (each seen in its time); rev3 withdraws consent for the grading. Both superseded rows now
    hold "risk grading withdrawn on <rev3's date>", and amendment() counts a before-row's withdrawn
    fields as fields it had, but ignores the after-row's: rev2's line reads "police amended: risk
    grading no longer shared", which is false (rev2 shared it, and changed it). Expected: a field
    withdrawn from both rows is not rev2's amendment (only rev3's line says it is no longer shared)."""
    store = TriageStore(sessions)
    views = {POLICE_OFFICER: ALL}
    rev1 = shared(1, "R-3", T0, views)
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-3", T0 + timedelta(hours=1), views, grading="MEDIUM")])
    store.apply([], [], [shared(3, "R-3", T0 + timedelta(hours=2), {POLICE_OFFICER: [NAME, SUMMARY]},
                                grading="MEDIUM")])
    page = page_for(sessions, POLICE_OFFICER)
    assert shown(page, 3).amended == "police amended: risk grading no longer shared"
    assert "no longer shared" not in shown(page, 2).amended, shown(page, 2).amended


def test_withdrawn_on_is_the_date_in_london_like_every_other_time_on_the_page(sessions: sessionmaker[Session]) -> None:
    """DEFECT (store._withdrawn, minor): the date is the revision's UTC date; the page shows every
    other time in Europe/London (`london` filter). Consent withdrawn at 00:30 BST on 2 July (23:30 UTC
    on 1 July) reads "withdrawn on 2026-07-01". Expected: the London date, 2026-07-02."""
    store = TriageStore(sessions)
    july = datetime(2026, 7, 1, 10, tzinfo=UTC)
    rev1 = shared(1, "R-4", july, {POLICE_OFFICER: ALL})
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-4", datetime(2026, 7, 1, 23, 30, tzinfo=UTC), {POLICE_OFFICER: [GRADING]})])
    gone = shown(page_for(sessions, POLICE_OFFICER), 1).withdrawn_fields
    assert dict(gone).get(NAME) == "2026-07-02", gone


def test_a_record_re_linked_to_another_child_does_not_show_on_the_first_childs_timeline_as_withdrawn_consent(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (store._supersede/_withdrawn): rev2 of a record is linked to child B (a corrected
    identifier: the record was never about A). _supersede empties rev1's views on A's timeline
    ("nothing of it stays to be seen"), but _withdrawn now marks every field of it "withdrawn on
    <date>" for every role, so the row is no longer withheld: whoever opens A's alert is shown the
    event type and that the given name, grading and summary were "withdrawn" (as if consent had been
    withdrawn) on a record about another child. Expected: the row is withheld on A's timeline (or
    says it was moved to another child), with no "withdrawn on" fields."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-5", T0, {POLICE_OFFICER: ALL, MANAGER: ALL}, given="Ben")
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-5", T0 + timedelta(hours=1), {POLICE_OFFICER: ALL, MANAGER: ALL},
                                person="B", given="Ben")])
    seen = shown(page_for(sessions, MANAGER), 1)
    assert "Ben" not in text_of(seen)
    assert seen.withheld and seen.withdrawn_fields == (), \
        f"A's timeline shows {seen.event_type}: {seen.withdrawn_fields}"


def test_an_amendment_never_tells_a_role_a_value_it_did_not_see(sessions: sessionmaker[Session]) -> None:
    """Held (privacy): the officer sees the grading in revision 2 only (the social worker in both);
    in revision 3 the grading goes from the officer's view again. Nothing on the officer's page,
    fields, amendments, notes or withdrawn fields, carries rev1's STANDARD or rev3's HIGH; rev2's
    MEDIUM was seen, and is named only as what the officer saw."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-6", T0, {POLICE_OFFICER: [NAME], SOCIAL_WORKER: ALL}, grading="STANDARD")
    store.apply([alert_of("A", [rev1])], [], [rev1])
    rev2 = shared(2, "R-6", T0 + timedelta(hours=1), {POLICE_OFFICER: [NAME, GRADING], SOCIAL_WORKER: ALL},
                  grading="MEDIUM")
    store.apply([], [], [rev2])
    page = page_for(sessions, POLICE_OFFICER)
    assert shown(page, 2).amended == "police amended: risk grading added: MEDIUM"
    assert "STANDARD" not in " ".join(text_of(e) for e in page.timeline)
    rev3 = shared(3, "R-6", T0 + timedelta(hours=2), {POLICE_OFFICER: [NAME], SOCIAL_WORKER: ALL}, grading="HIGH")
    store.apply([], [], [rev3])
    page = page_for(sessions, POLICE_OFFICER)
    everything = " ".join(text_of(e) for e in page.timeline)
    assert "STANDARD" not in everything and "HIGH" not in everything and "MEDIUM" not in everything
    assert shown(page, 3).amended == "police amended: risk grading no longer shared"
    worker = page_for(sessions, SOCIAL_WORKER)
    assert shown(worker, 2).amended == "police amended: risk grading STANDARD -> MEDIUM"
    assert shown(worker, 3).amended == "police amended: risk grading MEDIUM -> HIGH"
    assert all(e.withdrawn_fields == () for e in worker.timeline)


def test_re_applying_a_batch_changes_no_withdrawn_field_or_its_date(sessions: sessionmaker[Session]) -> None:
    """Held (redelivery): the same shared events written again leave withdrawn_fields, views,
    values and superseded_at as they were; revised_at missing falls back to received_at, and
    SQLite's naive datetimes read back are taken as UTC."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-7", None, {POLICE_OFFICER: ALL}, received=T0)
    store.apply([alert_of("A", [rev1])], [], [rev1])
    rev2 = shared(2, "R-7", None, {POLICE_OFFICER: [GRADING]}, received=T0 + timedelta(days=3))
    store.apply([], [], [rev2])
    before = timeline_row(sessions, 1)
    assert before.withdrawn_fields == {POLICE_OFFICER: {NAME: "2026-11-13", SUMMARY: "2026-11-13"}}
    store.apply([], [], [rev1, rev2])
    store.apply([], [], [rev2])
    after = timeline_row(sessions, 1)
    assert (after.withdrawn_fields, after.views, after.values, after.superseded_at, after.superseded_by) == \
        (before.withdrawn_fields, before.views, before.values, before.superseded_at, before.superseded_by)


def test_none_nested_and_huge_values_in_an_amendment(sessions: sessionmaker[Session]) -> None:
    """Held: a grading of None, then a nested value, then a huge one: no failure, each value shown
    short (at most 60 characters), None as "none"."""
    store = TriageStore(sessions)
    views = {POLICE_OFFICER: ALL}
    rev1 = shared(1, "R-8", T0, views, grading=None)
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-8", T0 + timedelta(hours=1), views, grading={"level": "HIGH", "by": ["x"]})])
    store.apply([], [], [shared(3, "R-8", T0 + timedelta(hours=2), views, grading={"level": "HIGH", "by": ["x"]},
                                summary="y" * 100_000)])
    page = page_for(sessions, POLICE_OFFICER)
    assert shown(page, 2).amended == "police amended: risk grading none -> {'level': 'HIGH', 'by': ['x']}"
    said = shown(page, 3).amended
    assert said.startswith("police amended: summary Police attended. -> yyy") and len(said) < 120


def test_the_alert_page_escapes_hostile_amendments_field_values_and_withdrawn_dates(
        sessions: sessionmaker[Session]) -> None:
    """Held: alert.html is autoescaped (select_autoescape: .html): a summary of <script> in a field
    value and in an amendment, and a hostile string stored as a withdrawn date, come out as text."""
    from services.triage_app.pages import templates

    store = TriageStore(sessions)
    views = {POLICE_OFFICER: ALL}
    rev1 = shared(1, "R-9", T0, views, summary="<b>x</b>")
    store.apply([alert_of("A", [rev1])], [], [rev1])
    rev2 = shared(2, "R-9", T0 + timedelta(hours=1), views, summary="<script>alert(1)</script>")
    store.apply([], [], [rev2])
    with sessions.begin() as session:  # a hostile date, as a corrupted or forged row would hold it
        session.execute(update(TimelineEventRecord).where(TimelineEventRecord.event_id == eid(1))
                        .values(withdrawn_fields={POLICE_OFFICER: {"payload.x": "<img src=x onerror=alert(2)>"}}))
    page = page_for(sessions, POLICE_OFFICER)
    html = templates.env.get_template("alert.html").render(
        user=User("u", "U", "triage_worker", POLICE_OFFICER), alert=page, workers=[], notice="", seen=1, csrf="c")
    assert "<script>" not in html and "<b>x</b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(2)&gt;" in html


def test_the_409_page_marks_only_events_that_joined_after_the_revision_decided(sessions: sessionmaker[Session]) -> None:
    """Held: events joined at revisions 1, 2 and 3; a decision on revision 2 marks only the third as
    new, even for a role the third is withheld from (it is counted, never shown)."""
    from services.triage_app.pages import templates

    store = TriageStore(sessions)
    events = [shared(n, f"R-1{n}", T0 + timedelta(hours=n), {POLICE_OFFICER: ALL if n < 3 else []}) for n in (1, 2, 3)]
    store.apply([alert_of("A", events, joined=[1, 2, 3], revision=3)], [], events)
    page = page_for(sessions, POLICE_OFFICER)
    html = templates.env.get_template("alert.html").render(
        user=User("u", "U", "triage_worker", POLICE_OFFICER), alert=page, workers=[], notice="", seen=2, csrf="c")
    assert html.count("new since you looked") == 1 and "joined at revision 3" in html
    marked = html.split("new since you looked")[0].rsplit("data-event-id=", 1)[1]
    assert marked.startswith(f'"{eid(3)}"')
    assert page.timeline[-1].withheld and "Police attended." not in html.split("new since you looked")[1]



def test_a_correction_proves_no_merge_when_another_record_followed_the_error(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """DEFECT (released_by_revision keeps what another record asserts): police describe Asha under
    their person reference POLICE:WYP-A, but PPN-1 carries Olga's NHS number. PPN-1 links to Olga
    and gives her POLICE:WYP-A; the next PPN about Asha (PPN-2, same person reference, no NHS
    number) follows it to Olga. PPN-1 is then corrected to Asha's NHS number: POLICE:WYP-A is kept
    (PPN-2 asserts it) and is still Olga's, so the correction carries identifiers of two persons and
    MERGES Olga and Asha: two children's records become one. README: "no merge follows from the
    error". Expected: no merge (hold the conflict for review, or release what the error put there)."""
    index = PersonIndex(sessions)
    olga, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:O"), profile=OLGA, agency="HEALTH",
                                   record_id="H-1", revised_ms=1)])
    asha, = index.link_batch([link("h2", OTHER_NHS, Identifier("local", "HEALTH:A"), profile=ASHA, agency="HEALTH",
                                   record_id="H-2", revised_ms=1)])
    ref = Identifier("local", "POLICE:WYP-A")
    wrong, = index.link_batch([link("p1", NHS, ref, profile=ASHA, record_id="PPN-1", revised_ms=10)])
    follower, = index.link_batch([link("q1", ref, profile=ASHA, record_id="PPN-2", revised_ms=11)])
    assert wrong.decision.person_id == follower.decision.person_id == olga.decision.person_id
    corrected, = index.link_batch([link("p2", OTHER_NHS, ref, profile=ASHA, record_id="PPN-1", revised_ms=20)])
    assert corrected.decision.merge == () and merges(engine) == 0, \
        f"the correction merged {corrected.decision.merge} into {corrected.decision.person_id}"
    assert corrected.decision.person_id == asha.decision.person_id


def test_a_corrected_record_leaves_no_description_of_its_child_on_the_wrong_child(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """DEFECT (person index, release): PPN-1 describes Asha (name, birth date, postcode) but carries
    Olga's NHS number; linked to Olga, its profile and blocking keys are filed under Olga. The
    correction moves the record to Asha but releases only identifiers: Olga keeps Asha's profile
    (and PPN-1's event and address). Asha's next record without an identifier then finds two
    candidates with her exact profile, Olga and Asha, too close to call: it is held for review as
    a NEW person instead of linking to Asha (a missed link), and Olga stays a candidate for every
    record about Asha. Expected: the correction takes back what the wrong revision filed under
    Olga, and Asha's next record links to Asha."""
    index = PersonIndex(sessions)
    olga, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:O"), profile=OLGA, agency="HEALTH",
                                   record_id="H-1", revised_ms=1)])
    asha, = index.link_batch([link("h2", OTHER_NHS, Identifier("local", "HEALTH:A"), profile=ASHA, agency="HEALTH",
                                   record_id="H-2", revised_ms=1)])
    ref = Identifier("local", "POLICE:WYP-7")
    index.link_batch([link("p1", NHS, ref, profile=ASHA, record_id="PPN-7", revised_ms=10)])
    corrected, = index.link_batch([link("p2", OTHER_NHS, ref, profile=ASHA, record_id="PPN-7", revised_ms=20)])
    assert corrected.decision.person_id == asha.decision.person_id
    later, = index.link_batch([link("x1", Identifier("local", "EDUCATION:X-1"), profile=ASHA, agency="EDUCATION",
                                    record_id="E-9", revised_ms=1)])
    with engine.connect() as db:
        evidence = db.scalar(select(LinkDecisionRecord.evidence).where(LinkDecisionRecord.event_id == "x1"))
    assert (later.decision.person_id, later.decision.method) == (asha.decision.person_id, "PROBABILISTIC"), \
        f"Asha's next record: {later.decision.method}; Olga ({olga.decision.person_id}) a candidate: {evidence}"


def test_the_triage_store_orders_revisions_as_triage_does_when_revised_at_is_far_ahead_of_the_read(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (store._supersede, queue._revised_order): same cause as the person index's: triage
    holds revised_at to received_at + 5 minutes, the store does not. rev1 claims revised_at
    9999-12-31 (received T0); rev2 is a real re-grading an hour later. Triage scores rev2 as the
    record's latest, but the store marks rev2 `superseded_by` rev1 and prunes rev2's views to rev1's:
    the timeline shows the stale grading as the one standing. Expected: rev2 stands."""
    store = TriageStore(sessions)
    views = {POLICE_OFFICER: ALL}
    rev1 = shared(1, "R-F", datetime(9999, 12, 31, tzinfo=UTC), views, received=T0)
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-F", T0 + timedelta(hours=1), views, grading="HIGH")])
    assert timeline_row(sessions, 2).superseded_by is None
    assert timeline_row(sessions, 1).superseded_by == eid(2)


def test_a_withdrawal_shows_no_withdrawn_fields_to_a_role_that_saw_nothing_of_the_record(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (store._withdrawn; same cause as the late-revision case): the record's only revision
    was withheld from the officer (consent refused for police); the agency then retracts it
    (entered in error) and the tombstone's decision lists fields for the officer. The tombstone is
    emptied in the same transaction it is written, so no one ever saw its fields, yet it is marked
    with every one of them "withdrawn on <date>": the officer, who saw nothing of this record, is now
    shown its event type and field names. Expected: the record stays withheld from the officer."""
    store = TriageStore(sessions)
    rev1 = shared(1, "R-W", T0, {POLICE_OFFICER: [], SOCIAL_WORKER: ALL})
    store.apply([alert_of("A", [rev1])], [], [rev1])
    store.apply([], [], [shared(2, "R-W", T0 + timedelta(hours=1), {POLICE_OFFICER: ALL, SOCIAL_WORKER: ALL},
                                withdrawn=True)])
    page = page_for(sessions, POLICE_OFFICER)
    assert all(e.withheld and e.withdrawn_fields == () for e in page.timeline), \
        [(e.event_type, e.withdrawn_fields) for e in page.timeline]


def test_sharing_places_revisions_across_a_redelivered_batch_and_a_stale_one_beside_its_successor(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """Held (sharing stage, in process): r10 recorded; then a redelivery of r10 with r11 and a late
    r9 in one batch. r10's entry is found, not made again; r11 names r10; r9 names r11 as its
    successor; the chain verifies; the same batch once more records nothing."""
    import orjson

    from services.sharing import audit_store
    from services.sharing.audit_chain import verify
    from services.sharing.policy_source import PolicySource
    from services.sharing.stage import Sharer
    from tests.integration.test_sharing import CODEC, DEFAULT_POLICY, enriched, feed, shared_events

    def revision(grading: str, hour: int) -> dict[str, Any]:
        return {**feed(1)[0], "risk_grading": grading, "updated_at": f"2026-11-10T{hour:02d}:00:00Z"}

    sharer = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY))
    first = enriched(sessions, [revision("STANDARD", 10)], tmp_path)
    r10, = (e["event_id"] for e in shared_events(sharer.process(first)))
    second = first + enriched(sessions, [revision("HIGH", 11), revision("MEDIUM", 9)], tmp_path)
    again, r11, r9 = (e["event_id"] for e in shared_events(sharer.process(second)))
    assert again == r10
    with sessions() as session:
        count = audit_store.count(session)
        bodies = {e: [orjson.loads(s.body) for s in audit_store.for_event(session, e)] for e in (r9, r10, r11)}
        assert verify(audit_store.read_chains(session)).broken is None
    assert count == 3 and all(len(b) == 1 for b in bodies.values())
    assert bodies[r11][0]["supersedes"]["event_id"] == r10
    assert bodies[r9][0]["superseded_by"]["event_id"] == r11
    sharer.process(second)
    with sessions() as session:
        assert audit_store.count(session) == count


def test_a_retracted_record_no_longer_holds_its_identifiers_on_the_child_it_was_wrongly_linked_to(
        engine: Engine, sessions: sessionmaker[Session]) -> None:
    """DEFECT (enrichment: withdrawals): a police PPN about Ava carries Olga's NHS number, so it is
    linked to Olga and gives her the police person reference WYP-LR-A. The police retract it
    (ENTERED_IN_ERROR). EventToLink carries no `withdrawn`, so the index links the tombstone as a
    revision asserting the same identifiers: nothing is released, and the retracted record keeps
    WYP-LR-A on Olga for good. Ava's next PPN (her own NHS number, the same person reference) then
    carries identifiers of two persons and merges Olga and Ava. README: a child holds an identifier
    "by the records asserting it"; a record entered in error asserts nothing. Expected: a
    withdrawal releases what only its record asserted, and no merge follows."""
    from connectors.registry import build_connector
    from services.enrichment.stage import event_to_link
    from tests.integration.test_living_records import ppn

    connector = build_connector("police", Path("/nonexistent"))
    read = datetime(2026, 11, 10, 12, tzinfo=UTC)

    def police(ppn_id: str, nhs: str, updated_at: str, status: str | None = None) -> EventToLink:
        fields = {**ppn(ppn_id, "A", "HIGH", updated_at, status=status), "nhs_number": nhs}
        return event_to_link(connector.to_event(connector.map(fields), received_at=read), connector.schema)

    index = PersonIndex(sessions)
    olga, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:O"), agency="HEALTH", record_id="H-1",
                                   revised_ms=1)])
    ava, = index.link_batch([link("h2", OTHER_NHS, Identifier("local", "HEALTH:A"), agency="HEALTH",
                                  record_id="H-2", revised_ms=1)])
    wrong, = index.link_batch([police("PPN-Z", NHS.value, "2026-11-10T10:00:00Z")])
    assert wrong.decision.person_id == olga.decision.person_id
    index.link_batch([police("PPN-Z", NHS.value, "2026-11-10T11:00:00Z", status="ENTERED_IN_ERROR")])
    next_ppn, = index.link_batch([police("PPN-Y", OTHER_NHS.value, "2026-11-10T11:30:00Z")])
    assert next_ppn.decision.person_id == ava.decision.person_id
    assert next_ppn.decision.merge == () and merges(engine) == 0, "a retracted record merged two children"


def test_a_poll_cursor_is_not_a_revision_stamp_but_a_police_stamp_is() -> None:
    """Held (contract.revised_by_source): an education row touched without change (its updated_at
    cursor moved) keeps its event id, while its envelope still orders by the new time; a police
    record sent again with its first stamp is a duplicate, and with a new stamp a revision. A
    stamp written in another zone or without one is the same instant, so the same revision."""
    from connectors.registry import build_connector
    from tests.integration.test_living_records import ppn

    read = datetime(2026, 11, 11, 12, tzinfo=UTC)
    school = build_connector("education", Path("/nonexistent"))

    def concern(updated_at: str, kind: str = "ATTENDANCE_DROP") -> dict[str, Any]:
        fields = {"concern_id": "C-1", "pupil_id": "PU-1", "forename": "Ava", "surname": "Lowe", "dob": "2014-03-03",
                  "sex": "F", "postcode": "LS1 1AA", "nhs_number": None, "upn": None, "address": None,
                  "logged_at": "2026-11-10T09:00:00Z", "school_urn": "100001", "concern_kind": kind,
                  "attendance_percent": None, "previous_attendance_percent": None, "safeguarding_category": None,
                  "detail": None, "updated_at": updated_at}
        return dict(school.to_event(school.map(fields), received_at=read)["envelope"])

    first, touched = concern("2026-11-10T10:00:00Z"), concern("2026-11-10T15:00:00Z")
    assert first["event_id"] == touched["event_id"] and first["revised_at"] < touched["revised_at"]
    assert concern("2026-11-10T16:00:00Z", "OTHER")["event_id"] != first["event_id"]

    police = build_connector("police", Path("/nonexistent"))

    def event_id(updated_at: str) -> str:
        return str(police.to_event(police.map(ppn("PPN-S", "A", "HIGH", updated_at)), received_at=read)
                   ["envelope"]["event_id"])

    assert event_id("2026-11-10T10:00:00Z") == event_id("2026-11-10T11:00:00+01:00") == event_id("2026-11-10T10:00:00")
    assert event_id("2026-11-10T10:00:00Z") != event_id("2026-11-10T10:00:01Z")


def test_a_merge_that_reaches_the_store_after_the_revision_does_not_leave_the_child_a_withdrawn_record(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (store: moves x _supersede): rev1 of a PPN is on child R's timeline. Enrichment then
    proves R and S one child and merges R into S; rev2 of the PPN (a re-grading) is linked to S. The
    merge notice travels keyed by R and rev2 keyed by S, so the store may write rev2 first: rev1 is
    then "about another child", its views and values are emptied for good and every field marked
    "withdrawn on <date>". When the move arrives, rev1 joins S's timeline, the same child's, saying
    that the name, grading and summary were withdrawn (nothing was: consent stands) and that rev2
    "added" them all. Expected: once the rows are one child's, no field of rev1 reads as withdrawn
    and rev2 does not read as adding them (a move re-supersedes the records it moves, and rev1
    keeps what rev2 still shares if the emptying waits for the merge)."""
    store = TriageStore(sessions)
    views = {POLICE_OFFICER: ALL}
    rev1 = shared(1, "R-M", T0, views, person="R")
    store.apply([alert_of("R", [rev1])], [], [rev1])
    rev2 = shared(2, "R-M", T0 + timedelta(hours=1), views, person="S", grading="HIGH")
    store.apply([alert_of("S", [rev2])], [], [rev2])
    store.apply([], [], [], moves=[("R", "S")])
    page = page_for(sessions, POLICE_OFFICER, person="S")
    old = shown(page, 1)
    assert old.withdrawn_fields == (), f"S's own record reads as withdrawn: {old.withdrawn_fields}"
    assert "added" not in shown(page, 2).amended, shown(page, 2).amended


def test_entries_recorded_before_migration_0005_are_found_as_their_records_earlier_revisions(tmp_path: Path) -> None:
    """DEFECT (migration 0005 x audit_store.of_records): since 0004 every revision's entry body names
    its record_id; 0005 adds the indexed column record_id, NULL on every entry recorded before, and
    cannot backfill it (the table is append-only: the triggers refuse the UPDATE). of_records looks
    only at the column, so on an upgraded hub a new revision's entry does not name the revision it
    supersedes, and an older revision arriving late is not said to be superseded, whenever the
    record's other entries predate the upgrade. Expected: entries from before the upgrade are
    found (e.g. by their bodies' record_id, or through the revisions' event ids)."""
    from mash.db import make_engine, upgrade
    from services.sharing import audit_store
    from services.sharing.decision_record import with_its_place

    made = make_engine(f"sqlite:///{tmp_path / 'upgraded.db'}")
    upgrade(made, "0004")
    before = _entry("00000000-0000-0000-0000-00000000000a", T0, T0)  # the body 0004's hub wrote
    with made.begin() as db:
        db.execute(text("INSERT INTO audit_records (chain, seq, prev_hash, hash, event_id, decision_key, "
                        "decisions_digest, body) VALUES ('p0', 1, '', 'h1', :e, :k, 'd', :body)"),
                   {"e": before["event_id"], "k": before["event_id"] + "/hub:sharing", "body": json.dumps(before)})
    upgrade(made)
    with sessionmaker(made)() as session:
        found = audit_store.of_records(session, ["R-1"])
    made.dispose()
    after = _entry("00000000-0000-0000-0000-00000000000b", T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    placed = with_its_place(after, found.get("R-1", []))
    assert placed.get("supersedes", {}).get("event_id") == before["event_id"], \
        f"the pre-upgrade entry of R-1 was not found: {found}"
