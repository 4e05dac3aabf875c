"""What the hostile fuzz suite (tests/integration/test_hostile_fuzz.py) found, each pinned without I/O:
a message of a schema that is well-formed but not its topic's is refused by the stage that reads it,
and an input read as nothing still leaves a record of itself (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import HEADER_SIZE, Codec
from mash.models import Base
from mash.settings import PROJECT_ROOT
from mash.topics import DECISIONS, ENRICHED, SHARED, inbound
from services.messages import InMessage
from services.triage.stage import DECISION_SCHEMA, MERGED_SCHEMA, SHARED_SCHEMA, off_topic

CODEC = Codec()
SHARED_EVENT = {"event_id": "e1", "person_id": "p1", "event_type": "PPN", "source_agency": "POLICE",
                "occurred_at": 1_764_000_000_000, "received_at": 1_764_000_000_000, "sensitivity": "STANDARD",
                "consent": "GIVEN", "policy_version": "v", "audit_ref": "p0:1", "values": "{}", "record_id": None,
                "revision": None, "revised_at": None, "withdrawn": False, "views": []}
DECISION = {"decision_id": "d1", "alert_id": "a1", "person_id": "p1", "outcome": "NO_FURTHER_ACTION",
            "rationale": "x", "decided_by": "u", "decided_role": "triage_worker", "rag_at_decision": "RED",
            "decided_at": 1_764_000_000_000, "audit_ref": "t:1", "alert_revision": None}
MERGED = {"retired_person_id": "p1", "surviving_person_id": "p2", "event_id": "e1", "merged_at": 1_764_000_000_000,
          "retired_state": None}


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def test_a_bundle_whose_entries_hold_no_encounter_is_one_dead_letter_not_a_file_read_as_nothing(
        tmp_path: Path) -> None:
    """Found by the fuzz suite (health, "huge values"/"wrong types"/"NUL and lone surrogates" at
    entry[1].resource.resourceType): the Encounter's resourceType replaced by a 10,001+ character
    string, a number or "\\ud800" gave zero records, and the file moved to done/ with no dead letter."""
    from connectors.sdk.formats import fhir_bundle

    sample = json.loads((PROJECT_ROOT / "connectors/health/samples/ed_attendances.fhir.json").read_text())
    encounter = next(e for e in sample["entry"] if e["resource"]["resourceType"] == "Encounter")
    patient = next(e for e in sample["entry"] if e["resource"]["resourceType"] == "Patient")
    hostile = {**encounter, "resource": {**encounter["resource"], "resourceType": "Z" * 10_001}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps({**sample, "entry": [patient, hostile]}))
    (record,) = list(fhir_bundle(path))
    assert record.fields is None and "holds no Encounter" in str(record.error)


def test_a_corrupt_merge_notice_on_the_enriched_topic_is_the_sharing_stages_dead_letter(
        sessions: sessionmaker[Session]) -> None:
    """Found by the fuzz suite (mash.enriched.v1, "truncated Avro"): sharing passed a PersonMerged on by
    its header alone, so a truncated body travelled to mash.shared.v1 and was dead-lettered by triage,
    naming a message of the shared topic instead of the one that came in."""
    from services.sharing.policy_source import PolicySource
    from services.sharing.stage import Sharer

    whole = CODEC.encode(MERGED, MERGED_SCHEMA)
    sharer = Sharer(CODEC, sessions, PolicySource(PROJECT_ROOT / "policies" / "sharing" / "default.yaml"))
    out = sharer.process([InMessage(f"t.{ENRICHED}", 0, 7, b"p1", whole[:HEADER_SIZE + 5]),
                          InMessage(f"t.{ENRICHED}", 0, 8, b"p1", whole)])
    assert [m.topic for m in out] == ["mash.deadletter.v1", SHARED]
    assert dict(out[0].headers)["mash.dlq.stage"] == b"hub:sharing" and out[1].value == whole


@pytest.mark.parametrize(("topic", "schema", "belongs"), [
    (SHARED, SHARED_SCHEMA, True), (SHARED, MERGED_SCHEMA, True), (DECISIONS, DECISION_SCHEMA, True),
    (SHARED, DECISION_SCHEMA, False), (DECISIONS, SHARED_SCHEMA, False), (DECISIONS, MERGED_SCHEMA, False),
    ("mash.alerts.v1", SHARED_SCHEMA, False),
])
def test_triage_takes_each_schema_only_from_its_own_topic(topic: str, schema: str, belongs: bool) -> None:
    assert (off_topic(f"t9.{topic}", schema) is None) is belongs


def test_a_decision_on_the_shared_topic_or_an_event_on_the_decisions_topic_is_dead_lettered_by_triage(
        sessions: sessionmaker[Session]) -> None:
    """Found by the fuzz suite (mash.shared.v1, "wrong schema", seed 1): a TriageDecision there was
    taken as a decision (a writer of shared events could close alerts), and a SharedEvent on the
    decisions topic would be scored though no sharing policy decided it and no audit sealed it."""
    from services.triage.correlation import Rules
    from services.triage.profiles import PROFILES_DIR, load_profile
    from services.triage.scoring_file import load_scoring
    from services.triage.stage import Triage

    decision = CODEC.encode(DECISION, DECISION_SCHEMA, check_types=False)
    shared = CODEC.encode(SHARED_EVENT, SHARED_SCHEMA, check_types=False)
    triage = Triage(CODEC, Rules(load_scoring(), load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml")), sessions)
    out = triage.process_batch([InMessage(f"t.{SHARED}", 0, 0, b"p1", decision),
                                InMessage(f"t.{DECISIONS}", 0, 0, b"p1", shared)])
    assert [(m.topic, dict(m.headers).get("mash.dlq.error_class")) for m in out] == [
        ("mash.deadletter.v1", b"NotForTriage"), ("mash.deadletter.v1", b"NotForTriage")]


def test_a_match_answer_on_an_inbound_topic_is_dead_lettered_before_it_reaches_the_index(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    """Of the same kind (the fuzz suite could not tell it apart: an answer naming no held review is a
    dead letter anyway): a feed writing a MatchAnswer to its inbound topic could confirm a merge."""
    from services.enrichment.person_index import PersonIndex
    from services.enrichment.stage import Enricher

    answered: list[Any] = []
    index = PersonIndex(sessions)
    monkeypatch.setattr(index, "answer", lambda *a: answered.append(a))
    answer = CODEC.encode({"review_event_id": "e1", "person_id": "p1", "candidate_person_id": "p2",
                           "answer": "CONFIRMED", "answered_by": "mallory", "answered_at": 1_764_000_000_000},
                          "uk.mash.hub.MatchAnswer")
    out = Enricher(CODEC, index).process([InMessage(f"t.{inbound('police')}", 0, 0, b"k", answer)])
    assert [dict(m.headers)["mash.dlq.error_class"] for m in out] == [b"MisplacedEvent"] and answered == []
