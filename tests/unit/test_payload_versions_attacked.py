"""Agency payload versions attacked: the hub's records embed agency payloads, so the catalogue keeps
the hub's schemas expanded with each agency version they may have been written with. Attacked here:
a second agency changing too (the hub's earlier expansion was parsed before the later agencies were
known), versions past 9, both orders in which two agencies may have changed, and the codec reading
a hub record written before the social care payload's v2."""

from __future__ import annotations

import io
import json
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer

from connectors.registry import build_connector
from mash.codec import MAGIC, Codec
from mash.compatibility import backward_problems
from mash.schema_catalogue import SCHEMAS_DIR, SchemaCatalogue, default_catalogue, load_catalogue

ENRICHED = "uk.mash.hub.EnrichedEvent"
POLICE = "police/public_protection_notification"
SOCIAL = "social_care/social_care_event"


def _copy(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(SCHEMAS_DIR, root)
    return root


def _add_optional(root: Path, stem: str, version: int, field: str) -> None:
    """`stem`.v`version` as the newest version before it with one more optional payload field."""
    folder, name = stem.split("/")
    older = max((root / folder).glob(f"{name}.v*.avsc"), key=lambda p: int(p.name.split(".v")[1].split(".")[0]))
    raw = json.loads(older.read_text())
    payload = next(f for f in raw["fields"] if f["name"] == "payload")
    payload["type"]["fields"].append({"name": field, "type": ["null", "string"], "default": None})
    (root / folder / f"{name}.v{version}.avsc").write_text(json.dumps(raw))


def _payload_fields(catalogue: SchemaCatalogue, branch: str) -> set[str]:
    latest = catalogue.latest(ENRICHED).expanded
    union = next(f for f in latest["fields"] if f["name"] == "payload")["type"]
    details = next(b for b in union if b["name"].endswith(branch))
    return {f["name"] for f in details["fields"]}


def _unreadable(then: SchemaCatalogue, now: SchemaCatalogue) -> list[tuple[str, int, int]]:
    return [(name, v.version, v.generation) for name, versions in then.families().items() for v in versions
            if now.by_fingerprint(v.fingerprint) is None]


def _pairwise_problems(catalogue: SchemaCatalogue) -> list[str]:
    """What `mash schemas check` reports."""
    return [f"{newer.path}: {p}" for versions in catalogue.families().values() for older, newer in pairwise(versions)
            for p in backward_problems(newer.expanded, older.expanded)]


def test_a_second_agency_changing_its_payload_keeps_the_catalogue_loadable(tmp_path: Path) -> None:
    """Defect (fixed): the hub was expanded 'as it stood before' a police v2 when only police had been
    loaded, so the enriched event's reference to the health payload was unknown and the whole
    catalogue failed to load (SchemaError naming enriched_event.v1.avsc)."""
    root = _copy(tmp_path, "now")
    _add_optional(root, POLICE, 2, "police_v2_field")
    now = load_catalogue(root)
    assert {"police_v2_field"} <= _payload_fields(now, "PpnDetails")
    assert {"level_of_need", "referral_category"} <= _payload_fields(now, "CaseEventDetails")
    assert _unreadable(default_catalogue(), now) == []
    assert _pairwise_problems(now) == []


def test_hub_records_stay_readable_whichever_agency_changed_first(tmp_path: Path) -> None:
    """Police v2 and social care v2: a hub record may have been written with police v2 and social care
    v1 (police changed first) or police v1 and social care v2 (the order this tree has): both known."""
    police_first = _copy(tmp_path, "police_first")
    _add_optional(police_first, POLICE, 2, "police_v2_field")
    (police_first / "social_care" / "social_care_event.v2.avsc").unlink()
    both = _copy(tmp_path, "both")
    _add_optional(both, POLICE, 2, "police_v2_field")
    now = load_catalogue(both)
    assert _unreadable(load_catalogue(police_first), now) == []
    assert _unreadable(default_catalogue(), now) == []


def test_version_ten_is_newer_than_version_nine(tmp_path: Path) -> None:
    root = _copy(tmp_path, "ten")
    for version in range(3, 11):
        _add_optional(root, SOCIAL, version, f"field_v{version}")
    now = load_catalogue(root)
    assert now.latest("uk.mash.social_care.SocialCareEvent").version == 10
    assert {f"field_v{v}" for v in range(3, 11)} <= _payload_fields(now, "CaseEventDetails")
    assert _unreadable(default_catalogue(), now) == []
    assert _pairwise_problems(now) == []


def test_the_hubs_latest_is_the_newest_expansion_of_every_generation_order() -> None:
    versions = default_catalogue().families()[ENRICHED]
    latest = default_catalogue().latest(ENRICHED)
    assert latest is versions[-1]
    assert latest.generation == max(v.generation for v in versions)
    assert {"level_of_need", "referral_category"} <= _payload_fields(default_catalogue(), "CaseEventDetails")


def _referral_v1_payload() -> dict[str, Any]:
    connector = build_connector("social_care", Path("/nonexistent-state"))
    first = json.loads(connector.sample.read_text().splitlines()[0])
    event = connector.to_event(connector.map(first))
    payload = {k: v for k, v in event["payload"].items() if k not in ("referral_category", "level_of_need")}
    return {"envelope": event["envelope"], "payload": payload}


def test_a_hub_record_written_before_social_care_v2_decodes_with_the_new_fields_empty() -> None:
    catalogue = default_catalogue()
    event = _referral_v1_payload()
    old = next(v for v in catalogue.families()[ENRICHED]
               if v.version == 2 and v.generation == catalogue.latest(ENRICHED).generation
               and "level_of_need" not in json.dumps(v.expanded))
    record = {"envelope": event["envelope"], "person_id": "0b7e3c52-8f0c-4a55-9e7e-5d2f1f3b9c21",
              "link_method": "NHS_NUMBER", "payload": ("uk.mash.social_care.CaseEventDetails", event["payload"])}
    buf = io.BytesIO()
    buf.write(MAGIC)
    buf.write(old.fingerprint)
    schemaless_writer(buf, old.parsed, record, strict_allow_default=True)
    decoded, writer = Codec(catalogue).decode(buf.getvalue(), ENRICHED)
    assert writer is old
    assert decoded["payload"]["kind"] == "REFERRAL"
    assert (decoded["payload"]["level_of_need"], decoded["payload"]["referral_category"]) == (None, None)


@pytest.mark.parametrize("name", [ENRICHED, "uk.mash.social_care.SocialCareEvent"])
def test_every_readable_form_is_read_by_the_latest(name: str) -> None:
    """The codec resolves any writer to the latest reader: every form must be backward compatible with it."""
    versions = default_catalogue().families()[name]
    latest = versions[-1]
    assert [p for v in versions for p in backward_problems(latest.expanded, v.expanded)] == []
