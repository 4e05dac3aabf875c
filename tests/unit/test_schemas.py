"""Every schema under schemas/ parses, and every version reads data written by its predecessor."""

import json
import shutil
from pathlib import Path

import pytest

from mash.compatibility import backward_problems
from mash.schema_catalogue import SCHEMAS_DIR, SchemaError, default_catalogue, load_catalogue
from mash.topics import CATALOGUE

FAMILIES = default_catalogue().families()


def test_every_schema_file_is_loaded() -> None:
    files = set(SCHEMAS_DIR.glob("*/*.avsc"))
    loaded = {v.path for versions in FAMILIES.values() for v in versions}
    assert files == loaded and len(files) >= 11


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_version_is_backward_compatible_with_every_earlier_one(name: str) -> None:
    versions = FAMILIES[name]
    for i, newer in enumerate(versions):
        for older in versions[:i]:
            if older.generation > newer.generation:
                continue  # an old version expanded with a later envelope than the newer one: never written before it
            assert backward_problems(newer.expanded, older.expanded) == [], (
                f"{newer.path} (envelope v{newer.generation}) vs v{older.version} (envelope v{older.generation})")


def test_every_topic_names_a_schema_that_exists() -> None:
    for spec in CATALOGUE:
        assert spec.schema in FAMILIES


def test_every_inbound_event_carries_the_shared_envelope() -> None:
    for spec in CATALOGUE:
        if spec.name.startswith("mash.inbound."):
            fields = {f["name"]: f for f in FAMILIES[spec.schema][-1].expanded["fields"]}
            assert fields["envelope"]["type"]["name"] == "uk.mash.Envelope"


def _write(root: Path, folder: str, name: str, schema: dict) -> None:  # type: ignore[type-arg]
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / name).write_text(json.dumps(schema))


def test_an_incompatible_new_version_is_detected(tmp_path: Path) -> None:
    base = {"type": "record", "name": "Thing", "namespace": "uk.mash.hub",
            "fields": [{"name": "a", "type": "string"}]}
    _write(tmp_path, "hub", "thing.v1.avsc", base)
    _write(tmp_path, "hub", "thing.v2.avsc", {**base, "fields": [*base["fields"], {"name": "b", "type": "int"}]})
    v1, v2 = load_catalogue(tmp_path).families()["uk.mash.hub.Thing"]
    assert backward_problems(v2.expanded, v1.expanded) == ["$.b: new field without a default"]


def test_a_misnamed_schema_file_is_rejected_with_its_path(tmp_path: Path) -> None:
    _write(tmp_path, "hub", "thing.avsc", {"type": "record", "name": "T", "fields": []})
    with pytest.raises(SchemaError, match=r"thing\.avsc"):
        load_catalogue(tmp_path)


def test_an_unparseable_schema_is_rejected_with_its_path(tmp_path: Path) -> None:
    _write(tmp_path, "hub", "thing.v1.avsc", {"type": "record", "name": "T", "fields": [{"name": "a", "type": "nope"}]})
    with pytest.raises(SchemaError, match=r"thing\.v1\.avsc"):
        load_catalogue(tmp_path)


def test_events_written_with_an_older_envelope_stay_readable() -> None:
    versions = FAMILIES["uk.mash.police.PublicProtectionNotification"]
    assert [(v.version, v.generation) for v in versions] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert len({v.fingerprint for v in versions}) == 4


@pytest.mark.parametrize(("newer", "details", "added"), [
    ("social_care/social_care_event.v2.avsc", "CaseEventDetails", "level_of_need"),
    ("health/emergency_attendance.v2.avsc", "AttendanceDetails", "maltreatment_alleged"),
])
def test_hub_records_written_before_an_agency_payload_changed_stay_readable(
        tmp_path: Path, newer: str, details: str, added: str) -> None:
    """An agency payload gained v2 (social care: a referral's category and level of need; health: the
    injury intent of maltreatment); an enriched event written before it embeds the v1 payload, and
    every fingerprint the catalogue knew then is still known."""
    before = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, before)
    (before / newer).unlink()
    then, now = load_catalogue(before), default_catalogue()
    unreadable = [(name, v.version, v.generation) for name, versions in then.families().items() for v in versions
                  if now.by_fingerprint(v.fingerprint) is None]
    assert unreadable == []
    latest = now.latest("uk.mash.hub.EnrichedEvent").expanded
    payloads = {branch["name"]: branch for branch in {f["name"]: f["type"] for f in latest["fields"]}["payload"]}
    namespace = {"CaseEventDetails": "uk.mash.social_care", "AttendanceDetails": "uk.mash.health"}[details]
    found = payloads.get(f"{namespace}.{details}") or payloads[details]
    assert added in {f["name"] for f in found["fields"]}
    assert then.latest("uk.mash.hub.EnrichedEvent").fingerprint != now.latest("uk.mash.hub.EnrichedEvent").fingerprint
