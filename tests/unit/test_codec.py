import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import to_parsing_canonical_form

from mash.codec import MAGIC, Codec, CodecError
from mash.schema_catalogue import load_catalogue

PPN = "uk.mash.police.PublicProtectionNotification"


def rabin_fingerprint(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification writes it, independent of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def ppn_event(**payload: Any) -> dict[str, Any]:
    now = datetime(2026, 11, 3, 23, 15, tzinfo=UTC)
    return {
        "envelope": {
            "event_id": str(uuid.uuid4()), "event_type": "police.public_protection_notification",
            "source_agency": "POLICE", "source_system": "rms", "source_record_id": "PPN-1",
            "occurred_at": now, "received_at": now,
            "subject": {"local_id": "P1", "nhs_number": "9434765919", "nhs_number_status": "VALID", "upn": None,
                        "upn_status": "ABSENT", "given_name": "Amelia",
                        "family_name": "Hughes", "date_of_birth": date(2016, 4, 12), "sex": "FEMALE",
                        "address_line": None, "postcode": "LS6 2QT"},
            "sensitivity": "STANDARD", "consent": "NOT_SOUGHT",
            "record_id": str(uuid.uuid4()), "revision": "sha256:0", "revised_at": now, "withdrawn": False,
        },
        "payload": {"incident_reference": "13000101", "incident_type": "DOMESTIC_ABUSE", "child_role": "PRESENT",
                    "children_present": True, "risk_grading": "HIGH", "summary": None, **payload},
    }


def test_round_trip_keeps_every_field() -> None:
    codec = Codec()
    event = ppn_event(summary="<script>alert('x')</script> — unicode ✓")
    decoded, writer = codec.decode(codec.encode(event, PPN))
    assert writer.name == PPN
    assert decoded == event


def test_messages_carry_the_single_object_header_with_the_spec_fingerprint() -> None:
    codec = Codec()
    data = codec.encode(ppn_event(), PPN)
    schema = codec.catalogue.latest(PPN)
    canonical = to_parsing_canonical_form(schema.expanded).encode()
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert int.from_bytes(data[2:10], "little") == rabin_fingerprint(canonical)


def test_unknown_field_is_rejected_not_dropped() -> None:
    event = ppn_event()
    event["payload"]["officer_notes"] = "not in the schema"
    with pytest.raises(CodecError, match="officer_notes"):
        Codec().encode(event, PPN)


def test_wrong_type_names_the_field() -> None:
    with pytest.raises(CodecError, match="children_present"):
        Codec().encode(ppn_event(children_present="yes"), PPN)


def test_oversized_message_is_rejected() -> None:
    with pytest.raises(CodecError, match="limit"):
        Codec().encode(ppn_event(summary="x" * 1_100_000), PPN)


@pytest.mark.parametrize("data, reason", [
    (b"", "missing the C3 01 marker"),
    (b"{\"json\": true}", "missing the C3 01 marker"),
    (MAGIC + b"\x00" * 8 + b"body", "unknown writer schema fingerprint"),
])
def test_foreign_bytes_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason):
        Codec().decode(data)


def test_truncated_and_padded_bodies_are_refused() -> None:
    codec = Codec()
    data = codec.encode(ppn_event(), PPN)
    with pytest.raises(CodecError, match="corrupt"):
        codec.decode(data[:-20])
    with pytest.raises(CodecError, match="trailing bytes"):
        codec.decode(data + b"\x00")


def test_reader_resolves_an_older_writer_to_its_own_version(tmp_path: Path) -> None:
    v1 = {"type": "record", "name": "Note", "namespace": "uk.mash.hub",
          "fields": [{"name": "text", "type": "string"}]}
    v2 = {**v1, "fields": [*v1["fields"], {"name": "lang", "type": "string", "default": "en"}]}
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "note.v1.avsc").write_text(json.dumps(v1))
    old_writer = Codec(load_catalogue(tmp_path))
    data = old_writer.encode({"text": "hello"}, "uk.mash.hub.Note")
    (tmp_path / "hub" / "note.v2.avsc").write_text(json.dumps(v2))
    reader = Codec(load_catalogue(tmp_path))
    record, writer = reader.decode(data, reader_name="uk.mash.hub.Note")
    assert writer.version == 1
    assert record == {"text": "hello", "lang": "en"}


def test_decoding_as_a_different_schema_is_refused() -> None:
    codec = Codec()
    with pytest.raises(CodecError, match=r"expected uk\.mash\.hub\.Alert"):
        codec.decode(codec.encode(ppn_event(), PPN), reader_name="uk.mash.hub.Alert")


def test_trusted_encoding_still_refuses_unknown_fields() -> None:
    event = ppn_event()
    event["envelope"]["extra"] = "x"
    with pytest.raises(CodecError, match="extra"):
        Codec().encode(event, PPN, check_types=False)
