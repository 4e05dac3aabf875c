"""Health payload v2 (maltreatment_alleged) attacked: the FHIR mapping with hostile extension values
and code lists, the flat connector's yes/no field, events and hub records written before v2, the
sharing policy and the scoring of an attendance whose only flag is the injury intent, and the RAG
truth's rule for episodes no record told as a concern."""

from __future__ import annotations

import copy
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from connectors.registry import build_connector
from connectors.sdk.fhir import encounter_records
from connectors.sdk.uk_core import LEGACY_EXTENSION_BASE, load_codes
from connectors.synth.feed import Event, rating, should_alert, unreported
from connectors.synth.rag_rules import Facts
from connectors.synth.render import tells_of_concern
from mash.alert_truth import AlertTruth, unreported_of
from mash.codec import MAGIC, Codec
from mash.schema_catalogue import SCHEMAS_DIR, default_catalogue, load_catalogue
from mash.settings import PROJECT_ROOT
from services.sharing.decide import EventFacts, decide_all
from services.sharing.fields import EventFields, plan_of
from services.sharing.policy import load_policy
from services.triage.scoring import Scored, assess, indicators_of
from services.triage.scoring_file import load_scoring

HEALTH = "uk.mash.health.EmergencyAttendance"
ENRICHED = "uk.mash.hub.EnrichedEvent"
URL = LEGACY_EXTENSION_BASE + "maltreatment-alleged"
SAMPLE = build_connector("health", Path("/nonexistent-state")).sample


def _sample_bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(SAMPLE.read_text())
    return bundle


def _first_encounter(bundle: dict[str, Any]) -> dict[str, Any]:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")


def _mapped(bundle: dict[str, Any], codes_path: Path | None = None) -> list[tuple[dict[str, Any] | None, str | None]]:
    codes = load_codes(codes_path) if codes_path else None
    return [(f, e) for _, f, e in (encounter_records(bundle, codes) if codes else encounter_records(bundle))]


def _with_extension(extension: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    bundle = _sample_bundle()
    encounter = _first_encounter(bundle)
    encounter["extension"] = [x for x in encounter.get("extension") or [] if x.get("url") != URL] + [extension]
    return _mapped(bundle)[0]


# --- the FHIR mapping -------------------------------------------------------------------------------


def test_the_sample_maps_with_the_new_flag_false() -> None:
    mapped = [f for f, e in _mapped(_sample_bundle()) if e is None]
    assert mapped and all(f is not None and f["maltreatment_alleged"] is False for f in mapped)


@pytest.mark.parametrize("value", ["true", "True", 1, 0, None, [True], {"value": True}, 1.0])
def test_a_legacy_extension_that_is_not_a_fhir_boolean_is_refused_never_read_as_false(value: Any) -> None:
    fields, error = _with_extension({"url": URL, "valueBoolean": value})
    assert fields is None and error is not None


def test_a_legacy_extension_with_a_nested_extension_and_no_value_is_refused() -> None:
    fields, error = _with_extension({"url": URL, "extension": [{"url": "inner", "valueBoolean": True}]})
    assert fields is None and error is not None


def test_a_legacy_extension_with_value_string_instead_of_boolean_is_refused() -> None:
    fields, error = _with_extension({"url": URL, "valueString": "true"})
    assert fields is None and error is not None


@pytest.mark.parametrize("value", [True, False])
def test_a_legacy_boolean_extension_is_read(value: bool) -> None:
    fields, error = _with_extension({"url": URL, "valueBoolean": value})
    assert error is None and fields is not None and fields["maltreatment_alleged"] is value


def test_a_similar_url_is_not_the_flag() -> None:
    fields, error = _with_extension({"url": URL + "-v2", "valueBoolean": True})
    assert error is None and fields is not None and fields["maltreatment_alleged"] is False
    fields, error = _with_extension({"url": "https://elsewhere.example/maltreatment-alleged", "valueBoolean": True})
    assert error is None and fields is not None and fields["maltreatment_alleged"] is False


def test_a_code_in_another_list_does_not_raise_maltreatment(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: ['777777777']\nmaltreatment_alleged: ['888888888']\n")
    bundle = _sample_bundle()
    encounter = _first_encounter(bundle)
    encounter["reasonCode"] = [{"text": "Bruise",
                                "coding": [{"system": "http://snomed.info/sct", "code": "777777777"}]}]
    (fields, error), *_ = _mapped(bundle, path)
    assert error is None and fields is not None
    assert fields["safeguarding_concern"] is True and fields["maltreatment_alleged"] is False
    encounter["reasonCode"][0]["coding"][0]["code"] = "888888888"
    (fields, error), *_ = _mapped(bundle, path)
    assert error is None and fields is not None and fields["maltreatment_alleged"] is True


def test_a_maltreatment_code_in_another_system_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("maltreatment_alleged: ['888888888']\n")
    bundle = _sample_bundle()
    _first_encounter(bundle)["reasonCode"] = [{"coding": [{"system": "http://example.org/local", "code": "888888888"}]}]
    assert all(f is None or f["maltreatment_alleged"] is False for f, _ in _mapped(bundle, path))


@pytest.mark.parametrize("text", [
    "maltreatment_alleged: '888888888'\n",
    "maltreatment_alleged: 888888888\n",
    "maltreatment_alleged: [abc]\n",
    "maltreatment_alleged: ['12345']\n",
    "maltreatment_alleged: ['0888888888']\n",
    "maltreatment_alleged: [[888888888]]\n",
    "maltreatment_allegd: ['888888888']\n",
])
def test_a_bad_maltreatment_code_list_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text(text)
    with pytest.raises(ValueError):
        load_codes(path)


def test_a_code_list_without_the_new_key_loads_with_no_maltreatment_codes(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: ['777777777']\ninjury_pattern_concern: []\nchild_protection: []\n")
    assert load_codes(path).maltreatment_alleged == frozenset()


# --- the flat connector -------------------------------------------------------------------------


def _flat() -> dict[str, Any]:
    fields = next(f for f, e in _mapped(_sample_bundle()) if e is None)
    assert fields is not None
    return dict(fields)


@pytest.mark.parametrize(("given", "expected"), [("yes", True), ("0", False), ("", False), (None, False)])
def test_the_connector_reads_the_flag_as_yes_or_no_and_absent_as_false(given: Any, expected: bool) -> None:
    connector = build_connector("health", Path("/nonexistent-state"))
    fields = {**_flat(), "maltreatment_alleged": given}
    assert connector.map(fields).payload["maltreatment_alleged"] is expected
    del fields["maltreatment_alleged"]
    assert connector.map(fields).payload["maltreatment_alleged"] is False


def test_the_connector_refuses_a_flag_that_is_not_yes_or_no() -> None:
    connector = build_connector("health", Path("/nonexistent-state"))
    with pytest.raises(ValueError):
        connector.map({**_flat(), "maltreatment_alleged": "maybe"})


# --- events and hub records written before v2 -----------------------------------------------------


def _event() -> dict[str, Any]:
    connector = build_connector("health", Path("/nonexistent-state"))
    return connector.to_event(connector.map(_flat()))


def _v1(tmp_path: Path) -> Any:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, root)
    (root / "health" / "emergency_attendance.v2.avsc").unlink()
    return load_catalogue(root)


def test_a_v1_attendance_decodes_with_the_intent_false_and_v2_is_the_latest(tmp_path: Path) -> None:
    event = _event()
    old = {**event, "payload": {k: v for k, v in event["payload"].items() if k != "maltreatment_alleged"}}
    data = Codec(_v1(tmp_path)).encode(old, HEALTH)
    now = Codec()
    assert now.catalogue.latest(HEALTH).version == 2
    as_written, writer = now.decode(data)
    assert writer.version == 1 and "maltreatment_alleged" not in as_written["payload"]
    decoded, _ = now.decode(data, HEALTH)
    assert decoded["payload"]["maltreatment_alleged"] is False


def test_a_v1_attendance_read_as_enrichment_reads_it_is_enriched_with_the_intent_false(tmp_path: Path) -> None:
    """Enrichment decodes an agency event with its writer's name (so the latest version of it): a v1
    payload gains maltreatment_alleged false and goes into the hub's enriched event."""
    event = _event()
    old = {**event, "payload": {k: v for k, v in event["payload"].items() if k != "maltreatment_alleged"}}
    codec = Codec()
    data = Codec(_v1(tmp_path)).encode(old, HEALTH)
    as_read, _ = codec.decode(data, reader_name=codec.writer_of(data).name)
    assert as_read["payload"]["maltreatment_alleged"] is False
    enriched = {"envelope": as_read["envelope"], "person_id": "0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21",
                "link_method": "NHS_NUMBER", "payload": as_read["payload"], "match_score": None,
                "match_model_version": None, "possible_match_person_id": None, "merged_person_ids": [],
                "context": {"open_social_care": False, "child_protection_plan": False, "looked_after": False,
                            "prior_events": [], "household_person_ids": []}}
    decoded, _ = codec.decode(codec.encode(enriched, ENRICHED, check_types=False), ENRICHED)
    assert decoded["payload"]["maltreatment_alleged"] is False
    assert decoded["payload"]["safeguarding_concern"] == old["payload"]["safeguarding_concern"]


def test_a_hub_record_written_before_health_v2_decodes_with_the_intent_false() -> None:
    catalogue = default_catalogue()
    event = _event()
    latest = catalogue.latest(ENRICHED)
    old = [v for v in catalogue.families()[ENRICHED] if "maltreatment_alleged" not in json.dumps(v.expanded)
           and v.generation == latest.generation]  # the envelope as it stands
    assert old
    payload = {k: v for k, v in event["payload"].items() if k != "maltreatment_alleged"}
    record = {"envelope": event["envelope"], "person_id": "0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21",
              "link_method": "NHS_NUMBER", "payload": ("uk.mash.health.AttendanceDetails", payload)}
    for version in old:
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(version.fingerprint)
        schemaless_writer(buf, version.parsed, copy.deepcopy(record), strict_allow_default=True)
        decoded, writer = Codec(catalogue).decode(buf.getvalue(), ENRICHED)
        assert writer is version and writer is not latest
        assert decoded["payload"]["maltreatment_alleged"] is False
        assert decoded["payload"]["attendance_id"] == payload["attendance_id"]


def test_a_string_for_the_flag_is_refused_by_the_codec() -> None:
    event = _event()
    with pytest.raises(ValueError):
        Codec().encode({**event, "payload": {**event["payload"], "maltreatment_alleged": "true"}}, HEALTH)
    with pytest.raises(ValueError):
        Codec().encode({**event, "payload": {**event["payload"], "maltreatment_alleged": None}}, HEALTH)


# --- sharing and scoring an attendance whose only flag is the injury intent -----------------------

POLICY = load_policy(PROJECT_ROOT / "policies" / "sharing" / "default.yaml")
SCORING = load_scoring()
MASH_ROLES = ("mash_social_worker", "mash_police_officer", "triage_manager")


def _decided(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    event = _event()
    event["payload"].update(payload)
    enriched = {**event, "person_id": "0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21", "link_method": "NHS_NUMBER",
                "match_score": None, "match_model_version": None, "possible_match_person_id": None,
                "merged_person_ids": [], "context": {"child_protection_plan": False, "looked_after": False,
                                                     "prior_events": []}}
    env = event["envelope"]
    facts = EventFacts(env["event_type"], env["source_agency"], env["sensitivity"], env["consent"],
                       {"child_protection_plan": False, "looked_after": False})
    fields = EventFields(enriched)
    decisions = decide_all(POLICY, facts, fields)
    values = fields.nested(plan_of({n for d in decisions for n in d.shared}))
    return values, {d.role: d.shared for d in decisions}


def test_a_flagged_attendance_shares_the_intent_with_the_mash_roles_and_is_red() -> None:
    values, shared = _decided({"safeguarding_concern": True, "injury_pattern_concern": False,
                               "maltreatment_alleged": True, "child_protection_flag": False})
    assert all("payload.maltreatment_alleged" in shared[r] for r in MASH_ROLES)
    assert "payload.maltreatment_alleged" not in shared["education_safeguarding_lead"]
    found = indicators_of(SCORING, "health.emergency_attendance", values, 0)
    assert assess(SCORING, [Scored("HEALTH", 0, found)]).rag == "RED"


def test_an_attendance_flagged_only_by_the_intent_reaches_the_roles_that_act_on_a_red() -> None:
    values, shared = _decided({"safeguarding_concern": False, "injury_pattern_concern": False,
                               "maltreatment_alleged": True, "child_protection_flag": False})
    found = indicators_of(SCORING, "health.emergency_attendance", values, 0)
    assert assess(SCORING, [Scored("HEALTH", 0, found)]).rag == "RED"
    assert all("payload.maltreatment_alleged" in shared[r] for r in MASH_ROLES)


def test_an_unflagged_attendance_is_not_scored() -> None:
    values, _ = _decided({"safeguarding_concern": False, "injury_pattern_concern": False,
                          "maltreatment_alleged": False, "child_protection_flag": False})
    assert indicators_of(SCORING, "health.emergency_attendance", values, 0) == ()


def test_the_intent_false_as_text_or_int_in_values_raises_nothing() -> None:
    for value in ("false", 0, None, "", "False"):
        found = indicators_of(SCORING, "health.emergency_attendance", {"payload": {"maltreatment_alleged": value}}, 0)
        assert found == ()


# --- the RAG truth's silent episodes --------------------------------------------------------------

T0 = datetime(2026, 2, 2, 9, tzinfo=UTC)


def event(agency: str, record_no: int, facts: Facts | None, episode: int, hours: float = 0,
          change: str | None = None, resubmission: bool = False) -> Event:
    at = T0 + timedelta(hours=hours)
    return Event(agency, 1, at, at + timedelta(hours=1), record_no, facts, episode, resubmission, change,
                 at + timedelta(hours=1))


ABUSE = Facts(40, sexual_abuse=True)
EARLY_HELP = Facts(100, domestic_abuse=True, child_present=True)


def test_a_resubmitted_unflagged_attendance_is_still_silent() -> None:
    events = [event("health", 7, ABUSE, 1), event("health", 7, ABUSE, 1, hours=3, resubmission=True)]
    assert rating(events, {("health", 7)}).rag is None
    assert unreported(events, {("health", 7)}).rag == "RED"


def test_a_retracted_record_beside_a_silent_one_leaves_the_episode_unreported() -> None:
    events = [event("health", 7, ABUSE, 1), event("police", 3, ABUSE, 1),
              event("police", 3, ABUSE, 1, hours=5, change="WITHDRAWN")]
    assert rating(events, {("health", 7)}).rag is None
    assert not should_alert(events, {("health", 7)})
    assert unreported(events, {("health", 7)}).rag == "RED"


def test_a_retracted_episode_alone_is_neither_rated_nor_unreported() -> None:
    events = [event("police", 3, ABUSE, 1), event("police", 3, ABUSE, 1, hours=5, change="WITHDRAWN")]
    assert rating(events).rag is None and unreported(events).rag is None


def test_a_corrected_revision_of_a_told_record_still_tells() -> None:
    events = [event("social_care", 4, ABUSE, 1), event("social_care", 4, ABUSE, 1, hours=5, change="CORRECTED"),
              event("health", 7, ABUSE, 1)]
    assert rating(events, {("health", 7)}).rag == "RED"
    assert unreported(events, {("health", 7)}).rag is None


def test_a_silent_record_of_another_child_does_not_silence_this_one() -> None:
    """`silent` is keyed by agency and record number; record numbers are per agency, so unique."""
    mine = [event("health", 8, ABUSE, 1)]
    assert rating(mine, {("health", 7)}).rag == "RED"


def test_a_red_episode_no_one_told_of_is_shown_beside_a_green_one_that_was_told() -> None:
    events = [event("police", 3, EARLY_HELP, 1), event("health", 7, ABUSE, 2, hours=24 * 40)]
    silent = {("health", 7)}
    assert rating(events, silent).rag == "GREEN"
    assert rating(events).rag == "RED"
    assert unreported(events, silent).rag == "RED"


def test_unreported_of_counts_only_children_with_a_rating_no_one_told_of() -> None:
    rows: list[dict[str, object]] = [{"unreported_rag": "RED"}, {"unreported_rag": None}, {},
                                     {"unreported_rag": "AMBER"}, {"unreported_rag": "RED"}]
    assert unreported_of(rows) == {"RED": 2, "AMBER": 1}
    shown = str(AlertTruth(1, 1, 1, 1, 0, 0, unreported=unreported_of(rows)))
    assert ("not counted, concerns no agency told of (children, by the rating they would have had): "
            "2 RED, 1 AMBER") in shown


def test_an_attendance_whose_only_flag_is_the_intent_tells_of_a_concern() -> None:
    record = {"safeguarding_concern": False, "injury_pattern_concern": False, "maltreatment_alleged": True,
              "child_protection_flag": False}
    assert tells_of_concern("health", record)
    assert not tells_of_concern("health", {**record, "maltreatment_alleged": False})
    legacy = {k: v for k, v in record.items() if k != "maltreatment_alleged"}
    assert not tells_of_concern("health", legacy)
