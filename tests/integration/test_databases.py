"""The person index and the triage store on a real database (SQLite, and PostgreSQL when given)."""

import json
import random
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from connectors.synth.population import population
from mash.db import make_engine, session_factory
from mash.models import (
    AlertRecord,
    EventOutcomeRecord,
    LinkDecisionRecord,
    MatchModelRecord,
    MatchReview,
    Person,
    PersonIdentifier,
    PersonMerge,
)
from mash.settings import Settings
from services.enrichment.comparisons import Profile
from services.enrichment.linking import Identifier
from services.enrichment.match_model import DEFAULT_MODEL, MatchModel, load_model
from services.enrichment.person_index import EventToLink, PersonIndex
from services.enrichment.training_pairs import pair_patterns
from services.triage_store.store import TriageStore
from tests.integration.conftest import mash

NHS = Identifier("nhs", "9434765919")
UPN = Identifier("upn", "B801200005001")
DAY_MS = 86_400_000
NOBODY = Profile()
ASHA = Profile("ASHA", "KHAN", date(2015, 3, 4), "F", "LS61AB")


def link(event_id: str, *identifiers: Identifier, profile: Profile = NOBODY, day: int = 100,
         agency: str = "POLICE", **extra: object) -> EventToLink:
    return EventToLink(event_id, agency, list(identifiers), profile, day * DAY_MS, **extra)  # type: ignore[arg-type]


def test_events_sharing_an_identifier_link_to_one_person(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    first, second = index.link_batch([link("e1", NHS, Identifier("local", "HEALTH:1")),
                                      link("e2", NHS, Identifier("local", "POLICE:9"))])
    third, = index.link_batch([link("e3", Identifier("local", "POLICE:9"))])
    methods = [r.decision.method for r in (first, second, third)]
    assert methods == ["NEW_PERSON", "NHS_NUMBER", "LOCAL_ID"]
    assert first.decision.person_id == second.decision.person_id == third.decision.person_id
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(Person)) == 1
        assert db.scalar(select(func.count()).select_from(PersonIdentifier)) == 3


def test_an_event_without_identifiers_links_probabilistically_with_its_evidence_recorded(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    known, = index.link_batch([link("e1", NHS, Identifier("local", "HEALTH:1"), profile=ASHA, agency="HEALTH")])
    keyed_by_police = Profile("ASHA", "KAHN", date(2015, 3, 4), "F", "LS61AB")
    linked, = index.link_batch([link("e2", Identifier("local", "POLICE:77"), profile=keyed_by_police)])
    assert (linked.decision.person_id, linked.decision.method) == (known.decision.person_id, "PROBABILISTIC")
    with engine.connect() as db:
        record = db.execute(select(LinkDecisionRecord).where(LinkDecisionRecord.event_id == "e2")).one()
        versions = db.scalars(select(MatchModelRecord.version)).all()
    assert record.model_version == DEFAULT_MODEL.version and versions == [DEFAULT_MODEL.version]
    assert record.evidence["levels"] == {"given": "EXACT", "family": "FUZZY", "dob": "EXACT", "sex": "AGREE",
                                         "postcode": "EXACT", "address": "MISSING"}
    assert record.score is not None and record.score >= DEFAULT_MODEL.link_threshold


def test_a_possible_match_is_held_for_review_and_never_linked(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    known, = index.link_batch([link("e1", NHS, profile=ASHA)])
    doubtful = Profile("ASHA", "KHAN", date(2015, 4, 3), "F", "M11AA")
    held, = index.link_batch([link("e2", Identifier("local", "POLICE:5"), profile=doubtful)])
    assert held.decision.person_id != known.decision.person_id
    assert held.decision.review_candidate == known.decision.person_id
    with engine.connect() as db:
        review = db.execute(select(MatchReview)).one()
    assert (review.event_id, review.candidate_person_id, review.status) == ("e2", known.decision.person_id, "OPEN")


def test_an_event_proving_two_persons_one_child_merges_them_and_keeps_the_history(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    health, = index.link_batch([link("e1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH")])
    school, = index.link_batch([link("e2", UPN, Identifier("local", "EDUCATION:1"), agency="EDUCATION", day=90)])
    assert health.decision.person_id != school.decision.person_id
    proof, = index.link_batch([link("e3", NHS, UPN, Identifier("local", "SOCIAL_CARE:1"), agency="SOCIAL_CARE",
                                    day=105)])
    survivor, retired = health.decision.person_id, school.decision.person_id
    assert (proof.decision.person_id, proof.decision.merge) == (survivor, (retired,))
    assert proof.context["prior_events"] == [
        {"agency": "HEALTH", "last_30_days": 1, "last_90_days": 1, "last_365_days": 1},
        {"agency": "EDUCATION", "last_30_days": 1, "last_90_days": 1, "last_365_days": 1}]
    with engine.connect() as db:
        owners = set(db.scalars(select(PersonIdentifier.person_id)))
        merged_into = db.scalar(select(Person.merged_into).where(Person.person_id == retired))
        merge = db.execute(select(PersonMerge)).one()
        original = db.scalar(select(LinkDecisionRecord.person_id).where(LinkDecisionRecord.event_id == "e2"))
    assert owners == {survivor} and merged_into == survivor
    assert (merge.retired_person_id, merge.surviving_person_id, merge.event_id) == (retired, survivor, "e3")
    assert original == retired  # the decision as it was made is kept
    redelivered, = index.link_batch([link("e2", UPN, Identifier("local", "EDUCATION:1"), agency="EDUCATION")])
    assert redelivered.decision.person_id == survivor and redelivered.redelivered


def test_a_redelivered_event_gets_its_first_decision_and_is_not_counted_twice(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    cp_started = {"open_social_care": True, "child_protection_plan": True}
    first, again = index.link_batch([link("e1", NHS, status_change=cp_started, address_key="1VICTORIARD|LS61AB"),
                                     link("e1", NHS, status_change=cp_started, address_key="1VICTORIARD|LS61AB")])
    later, = index.link_batch([link("e2", NHS, day=110, address_key="1VICTORIARD|LS61AB")])
    sibling, = index.link_batch([link("e3", Identifier("nhs", "4010232137"), address_key="1VICTORIARD|LS61AB")])
    assert again.redelivered and again.decision.person_id == first.decision.person_id
    assert later.context["prior_events"] == [
        {"agency": "POLICE", "last_30_days": 1, "last_90_days": 1, "last_365_days": 1}]
    assert later.context["child_protection_plan"] and later.context["open_social_care"]
    assert sibling.context["household_person_ids"] == [first.decision.person_id]
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(LinkDecisionRecord)) == 3


OTHER_NHS = Identifier("nhs", "9434765870")
WRONG_NHS = Identifier("nhs", "4010232137")


def owner(engine: Engine, identifier: Identifier) -> str | None:
    with engine.connect() as db:
        return db.scalar(select(PersonIdentifier.person_id).where(PersonIdentifier.scheme == identifier.scheme,
                                                                  PersonIdentifier.value == identifier.value))


def test_a_corrected_nhs_number_moves_the_record_and_leaves_no_wrong_number_or_merge_behind(engine: Engine) -> None:
    """A police record carried another child's NHS number, then was corrected. Its own subject id
    (asserted by no other record) goes with it to the right child; the number it wrongly carried
    stays with the child whose health records assert it; nobody is merged."""
    index = PersonIndex(session_factory(engine))
    subject = Identifier("local", "POLICE:P-7")
    other_child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                          record_id="H-1", revised_ms=1)])
    right_child, = index.link_batch([link("h2", OTHER_NHS, Identifier("local", "HEALTH:2"), agency="HEALTH",
                                          record_id="H-2", revised_ms=1)])
    wrong, = index.link_batch([link("p1", NHS, subject, record_id="PPN-1", revised_ms=10)])
    assert wrong.decision.person_id == other_child.decision.person_id
    corrected, = index.link_batch([link("p2", OTHER_NHS, subject, record_id="PPN-1", revised_ms=20)])
    assert corrected.decision.person_id == right_child.decision.person_id
    assert corrected.decision.merge == ()
    assert owner(engine, subject) == right_child.decision.person_id
    assert owner(engine, NHS) == other_child.decision.person_id
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(PersonMerge)) == 0
        evidence = db.scalar(select(LinkDecisionRecord.evidence).where(LinkDecisionRecord.event_id == "p2"))
    assert evidence is not None and evidence["released"] == ["local:POLICE:P-7"]


def test_a_wrong_number_only_the_corrected_record_gave_is_no_childs_any_more(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    subject = Identifier("local", "SOCIAL_CARE:S-1")
    first, = index.link_batch([link("s1", WRONG_NHS, subject, agency="SOCIAL_CARE", record_id="C-1",
                                    revised_ms=10)])
    second, = index.link_batch([link("s2", NHS, subject, agency="SOCIAL_CARE", record_id="C-1", revised_ms=20)])
    assert owner(engine, WRONG_NHS) is None
    assert owner(engine, NHS) == owner(engine, subject) == second.decision.person_id
    later, = index.link_batch([link("h9", WRONG_NHS, Identifier("local", "HEALTH:9"), agency="HEALTH")])
    assert later.decision.method == "NEW_PERSON"  # the real owner of that number is someone else
    assert later.decision.person_id not in (first.decision.person_id, second.decision.person_id)


def test_an_older_revision_arriving_late_follows_its_record_and_proves_no_merge(engine: Engine) -> None:
    """The corrected revision is linked first; the original (wrong number) arrives after it. It
    goes where the record stands, attaching nothing and merging nobody."""
    index = PersonIndex(session_factory(engine))
    subject = Identifier("local", "POLICE:P-8")
    other_child, = index.link_batch([link("h1", NHS, Identifier("local", "HEALTH:1"), agency="HEALTH",
                                          record_id="H-1", revised_ms=1)])
    newer, = index.link_batch([link("p2", OTHER_NHS, subject, record_id="PPN-8", revised_ms=20)])
    older, = index.link_batch([link("p1", NHS, subject, record_id="PPN-8", revised_ms=10)])
    assert older.decision.person_id == newer.decision.person_id != other_child.decision.person_id
    assert older.decision.merge == () and older.decision.attach == ()
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(PersonMerge)) == 0
    again, = index.link_batch([link("p1", NHS, subject, record_id="PPN-8", revised_ms=10)])
    assert again.redelivered and again.decision.person_id == newer.decision.person_id


def test_a_revision_that_changes_no_identifier_stays_with_its_child(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    subject = Identifier("local", "POLICE:P-9")
    first, = index.link_batch([link("r1", subject, record_id="PPN-9", revised_ms=10)])
    regraded, = index.link_batch([link("r2", subject, record_id="PPN-9", revised_ms=20)])
    assert (regraded.decision.person_id, regraded.decision.method) == (first.decision.person_id, "LOCAL_ID")


def test_two_workers_racing_on_a_new_child_create_one_person(settings: Settings, engine: Engine) -> None:
    engines = [make_engine(settings.sqlalchemy_url()) for _ in range(2)]
    indexes = [PersonIndex(session_factory(e)) for e in engines]
    start = threading.Barrier(2)
    results: list[str] = []

    def work(index: PersonIndex, n: int) -> None:
        start.wait()
        for i in range(20):
            ids = [Identifier("nhs", f"race-{i}"), Identifier("local", f"W{n}:{i}")]
            results.append(index.link_batch([link(f"e{n}-{i}", *ids)])[0].decision.person_id)

    threads = [threading.Thread(target=work, args=(index, n)) for n, index in enumerate(indexes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for e in engines:
        e.dispose()
    with engine.connect() as db:
        persons = db.scalar(select(func.count()).select_from(Person))
        owners = db.scalar(select(func.count(func.distinct(PersonIdentifier.person_id)))
                           .where(PersonIdentifier.scheme == "nhs"))
    assert len(results) == 40
    assert persons == owners == 20


def alert(revision: int, rag: str) -> dict:  # type: ignore[type-arg]
    now = datetime(2026, 11, 25, tzinfo=UTC)
    return {"alert_id": "a1", "person_id": "p1", "revision": revision, "status": "OPEN", "rag": rag,
            "reasons": ["r"], "agencies": ["HEALTH", "POLICE"], "event_ids": ["e1", "e2"][:revision + 1],
            "opened_at": now, "updated_at": now}


def outcome(event_id: str, kind: str) -> dict:  # type: ignore[type-arg]
    return {"event_id": event_id, "person_id": "p1", "source_agency": "POLICE", "outcome": kind,
            "alert_id": None, "recorded_at": 1_764_000_000_000}


def test_triage_store_is_idempotent_and_keeps_the_latest_revision(engine: Engine) -> None:
    store = TriageStore(session_factory(engine))
    store.apply([alert(2, "RED"), alert(1, "AMBER")], [outcome("e1", "NO_ALERT")])
    store.apply([alert(1, "AMBER")], [outcome("e1", "NO_ALERT"), outcome("e1", "NO_ALERT"),
                                      outcome("e2", "ALERT_RAISED")])
    with engine.connect() as db:
        rows = db.execute(select(AlertRecord.revision, AlertRecord.rag)).all()
        outcomes = db.scalar(select(func.count()).select_from(EventOutcomeRecord))
    assert [tuple(r) for r in rows] == [(2, "RED")]
    assert outcomes == 2
    store.apply([alert(3, "RED"), alert(2, "AMBER")], [])  # a later revision moves the hub's columns on
    with engine.connect() as db:
        assert [tuple(r) for r in db.execute(select(AlertRecord.revision, AlertRecord.rag))] == [(3, "RED")]


def test_estimation_pairs_count_every_pair_of_events_blocking_brings_together(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    sister = Profile("ZARA", "KHAN", date(2015, 3, 4), "F", "LS61AB")  # same birthday and surname
    index.link_batch([link("e1", NHS, profile=ASHA), link("e2", NHS, profile=ASHA),
                      link("e3", Identifier("nhs", "4010232137"), profile=sister)])
    with session_factory(engine)() as session:
        patterns = pair_patterns(session)
    assert patterns[("EXACT", "EXACT", "EXACT", "AGREE", "EXACT", "MISSING")] == 1  # e1 with e2: one child, alike
    assert patterns[("DISAGREE", "EXACT", "EXACT", "AGREE", "EXACT", "MISSING")] == 2  # each with her sister


def test_a_model_learned_from_an_index_of_households_is_refused_when_it_would_join_other_children(
        settings: Settings, engine: Engine) -> None:
    """Each child described three times alike, siblings and neighbours under shared keys: EM
    explains nearly every blocked pair as a match and learns that any slip (a short form of the
    name, a move within the district, a digit of the birthday) means another child. The labelled
    cases refuse it; nothing is written and the hub keeps the model it had."""
    index = PersonIndex(session_factory(engine))
    rng = random.Random(3)
    children = population(rng, 400, date(2025, 1, 1), 365)
    events = [link(f"e{n}-{c.person}", Identifier("nhs", c.nhs),
                   profile=Profile(c.given.upper(), c.family.upper(), c.dob, c.sex, c.addresses[0][2].replace(" ", "")))
              for n in range(3) for c in children]
    index.link_batch(events)
    refused = mash(settings, "hub", "match-model", "estimate", check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "FAILED" in refused.stdout and "held for review if" in refused.stdout
    assert "refused and nothing was written" in refused.stderr and DEFAULT_MODEL.version in refused.stderr
    assert not settings.learned_match_model().exists() and settings.match_model_in_use() is None


def test_an_accepted_learned_model_is_the_one_the_hub_uses_shows_and_tests(settings: Settings, engine: Engine) -> None:
    """Where `estimate` writes the model it accepts, the hub links with it unless MASH_MATCH_MODEL
    names another; `show` and `test` read the same model."""
    learned = MatchModel(DEFAULT_MODEL.m, {**DEFAULT_MODEL.u, "sex": {"AGREE": 0.45, "DISAGREE": 0.55}},
                         source="em over 1000 pairs, u from random pairs")
    settings.learned_match_model().write_text(json.dumps(learned.to_json()))
    assert settings.match_model_in_use() == settings.learned_match_model()
    shown = mash(settings, "hub", "match-model", "show")
    assert learned.version in shown.stdout and "u from random pairs" in shown.stdout
    tested = mash(settings, "hub", "match-model", "test")
    assert f"match model {learned.version}" in tested.stdout and "17 of 17 cases as expected" in tested.stdout
    assert load_model(None) == DEFAULT_MODEL


def test_term_frequencies_counted_from_the_index_go_with_the_model_in_use_under_the_guard_rails(
        settings: Settings, engine: Engine) -> None:
    """`frequencies` counts each name and postcode over the persons the index describes, keeps the
    model's weights, passes the labelled cases, and writes a model the hub and `show` then use."""
    index = PersonIndex(session_factory(engine))
    children = population(random.Random(4), 300, date(2025, 1, 1), 365)
    index.link_batch([link(f"e-{c.person}", Identifier("nhs", c.nhs),
                           profile=Profile(c.given.upper(), c.family.upper(), c.dob, c.sex,
                                           c.addresses[0][2].replace(" ", ""))) for c in children])
    written = mash(settings, "hub", "match-model", "frequencies", check=False)
    assert written.returncode == 0, written.stdout + written.stderr
    assert "term frequencies over 300 persons" in written.stdout and "17 of 17" in written.stdout
    model = load_model(settings.match_model_in_use())
    assert model.tf is not None and model.tf.persons == 300 and model.m == DEFAULT_MODEL.m
    surnames = {c.family.upper() for c in children}
    commonest = max(surnames, key=lambda f: sum(c.family.upper() == f for c in children))
    assert model.tf.shares["family"][commonest] == sum(c.family.upper() == commonest for c in children) / 300
    assert "term frequencies over 300 persons" in mash(settings, "hub", "match-model", "show").stdout


def test_an_unusable_model_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    broken = tmp_path / "model.json"
    broken.write_text('{"m": {}}')
    with pytest.raises(ValueError, match="match-model estimate"):
        load_model(broken)


def test_two_workers_holding_one_persons_triage_state_cannot_both_save_it(engine: Engine) -> None:
    """During a rebalance two workers may read the same person; the second to save finds the
    version moved (or the row made) and must redo its batch, never overwrite the first."""
    from services.triage import state_store
    from services.triage.correlation import PersonState, SeenEvent
    from services.triage.state_store import StaleState

    sessions = session_factory(engine)
    seen = PersonState(events=(SeenEvent("e1", "POLICE", 0, "NO_ALERT", None),))
    for attempt in ("made", "moved"):
        with sessions() as first, sessions() as second:
            mine, theirs = state_store.load(first, ["p1"]), state_store.load(second, ["p1"])
            for held in (mine, theirs):
                held["p1"].state, held["p1"].changed = seen if attempt == "made" else PersonState(), True
            state_store.save(first, mine)
            first.commit()
            with pytest.raises(StaleState):
                state_store.save(second, theirs)
            second.rollback()
    with sessions() as session:
        held = state_store.load(session, ["p1"])
    assert held["p1"].version == 2 and held["p1"].state == PersonState()


def test_one_bad_message_in_a_triage_batch_is_dead_lettered_alone(engine: Engine) -> None:
    from mash.codec import Codec
    from services.messages import InMessage
    from services.triage.correlation import Rules
    from services.triage.profiles import PROFILES_DIR, load_profile
    from services.triage.scoring_file import load_scoring
    from services.triage.stage import Triage

    codec = Codec()
    shared = {"event_id": "e1", "person_id": "p1", "event_type": "PPN", "source_agency": "POLICE",
              "occurred_at": 1_764_000_000_000, "received_at": 1_764_000_000_000, "sensitivity": "STANDARD",
              "consent": "GIVEN", "policy_version": "v", "audit_ref": "p0:1", "values": "{}",
              "record_id": None, "revision": None, "revised_at": None, "withdrawn": False, "views": []}
    good = codec.encode(shared, "uk.mash.hub.SharedEvent", check_types=False)
    broken = codec.encode({**shared, "event_id": "e2", "values": "{not json"}, "uk.mash.hub.SharedEvent",
                          check_types=False)
    triage = Triage(codec, Rules(load_scoring(), load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml")),
                    session_factory(engine))
    out = triage.process_batch([InMessage("t.mash.shared.v1", 0, n, b"p1", v) for n, v in
                                enumerate((broken, b"not avro", good))])
    assert [m.topic for m in out] == ["mash.deadletter.v1", "mash.deadletter.v1", "mash.outcomes.v1"]
    with engine.connect() as db:
        assert list(db.scalars(select(EventOutcomeRecord.event_id))) == ["e1"]


@pytest.mark.parametrize(("section", "field", "chars"), [
    ("subject", "given_name", 100), ("subject", "family_name", 5_000), ("subject", "local_id", 300),
    ("subject", "postcode", 40), ("subject", "address_line", 2_000), ("envelope", "revision", 200),
])
def test_an_inbound_event_over_a_field_limit_is_dead_lettered_alone_on_every_database(
        engine: Engine, tmp_path: Path, section: str, field: str, chars: int) -> None:
    """Produced by anyone (not only our connectors): one event with a 100-character name once stopped
    every agency on PostgreSQL (a column of 64). It is one dead letter with its reason; the others link."""
    from connectors.registry import build_connector
    from mash.codec import Codec
    from services.enrichment.stage import Enricher
    from services.messages import InMessage
    from tests.integration.test_identity import police

    codec, connector = Codec(), build_connector("police", tmp_path)
    events = [connector.to_event(connector.map(police(n, f"P-LIM-{n}", None, "2014-01-02", "LS1 1AA", 3)))
              for n in range(3)]
    where = events[1]["envelope"] if section == "envelope" else events[1]["envelope"]["subject"]
    where[field] = "A" * chars
    batch = [InMessage("t.mash.inbound.police.v1", 0, n, b"k", codec.encode(e, connector.schema, check_types=False))
             for n, e in enumerate(events)]
    out = Enricher(codec, PersonIndex(session_factory(engine))).process(batch)
    assert [m.topic for m in out] == ["mash.deadletter.v1", "mash.enriched.v1", "mash.enriched.v1"]
    reason = dict(out[0].headers)["mash.dlq.error_message"].decode()
    assert f"{section}.{field} is {chars} characters" in reason, out[0].headers


def test_the_connector_refuses_an_over_long_name_naming_its_own_field(tmp_path: Path) -> None:
    from connectors.registry import build_connector
    from connectors.sdk.contract import MappingError
    from tests.integration.test_identity import police

    connector = build_connector("police", tmp_path)
    with pytest.raises(MappingError, match="'forename' is 100 characters; the limit for a child's given name is 64"):
        connector.to_event(connector.map({**police(1, "P-1", None, "2014-01-02", "LS1 1AA", 3), "forename": "A" * 100}))
    with pytest.raises(MappingError, match="the record id is 500 characters"):
        connector.to_event(connector.map({**police(1, "P-1", None, "2014-01-02", "LS1 1AA", 3), "ppn_id": "9" * 500}))
