"""Hostile and broken files in a drop folder: each is one dead letter (or a wait), never a crashed
or stuck feed, and nothing outside the inbox is ever read."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from connectors.sdk import formats
from connectors.sdk.sources.base import SourceRecord, StreamEnd
from connectors.sdk.sources.file_drop import FileDropConfig, FileDropSource

PATIENT = {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "MRN1", "name": [{"family": "H"}],
                                                  "birthDate": "2016-04-12"}}


def source(inbox: Path, file_format: str = "jsonl", settle_s: float = 0.0) -> FileDropSource:
    return FileDropSource(FileDropConfig(inbox=inbox, format=file_format, settle_s=settle_s))  # type: ignore[arg-type]


def settled(inbox: Path, name: str, text: str) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_text(text)
    return path


def run(src: FileDropSource) -> tuple[list[SourceRecord], list[StreamEnd]]:
    items = list(src.items({}))
    ends = [i for i in items if isinstance(i, StreamEnd)]
    for end in ends:
        src.acknowledge(end)
    return [i for i in items if isinstance(i, SourceRecord)], ends


def test_deeply_nested_json_is_one_dead_letter_and_the_next_line_is_read(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    settled(inbox, "a.jsonl", "[" * 100_000 + "]" * 100_000 + '\n{"x": 1}\n')
    records, _ = run(source(inbox))
    assert "nested too deeply" in str(records[0].error) and records[1].fields == {"x": 1}


def test_an_encounter_whose_subject_is_a_string_is_one_dead_letter_the_others_are_read(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    good = {"resource": {"resourceType": "Encounter", "id": "e2", "status": "finished", "class": {"code": "EMER"},
                         "subject": {"reference": "urn:uuid:p"},
                         "period": {"start": "2026-11-05T02:15:00Z"}}}
    broken = {"resource": {"resourceType": "Encounter", "id": "e1", "subject": "Patient/MRN1"}}
    flag = {"resource": {"resourceType": "Flag", "status": "active", "subject": "x", "code": "cp-is"}}
    settled(inbox, "b.json", json.dumps({"resourceType": "Bundle", "entry": [PATIENT, broken, flag, good]}))
    records, ends = run(source(inbox, "fhir"))
    assert [r.error is None for r in records] == [False, False, True]  # the unplaceable Flag is its own dead letter
    assert "cannot be placed" in str(records[0].error) and "references no Patient" in str(records[1].error)
    assert not ends[0].position["failed"] and (tmp_path / "done" / "b.json").exists()


def test_a_symbolic_link_is_refused_unread_and_moved_to_failed(tmp_path: Path) -> None:
    """A link to /etc/hostname once put the host's name on the dead-letter topic."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "leak.jsonl").symlink_to("/etc/hostname")
    records, ends = run(source(inbox))
    assert "symbolic link" in str(records[0].error) and records[0].raw == b""
    hostname = Path("/etc/hostname").read_bytes().strip()
    assert hostname not in repr(records).encode()
    assert ends[0].position["failed"] and (tmp_path / "failed" / "leak.jsonl").is_symlink()
    assert Path("/etc/hostname").exists()  # the link moved, never its target


def test_a_named_pipe_is_refused_without_blocking_the_feed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.jsonl")
    settled(inbox, "z.jsonl", '{"x": 1}\n')
    records, _ = run(source(inbox))
    assert "not a regular file" in str(records[0].error) and records[1].fields == {"x": 1}


def test_a_file_still_being_written_waits_and_a_temporary_name_is_never_taken(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    settled(inbox, "upload.jsonl.part", '{"x": 0}\n')
    settled(inbox, "fresh.jsonl", '{"x": 1}\n')
    started = time.monotonic()
    records, _ = run(source(inbox, settle_s=0.5))
    assert time.monotonic() - started >= 0.4  # it waited for the file to settle
    assert [r.fields for r in records] == [{"x": 1}]
    assert (inbox / "upload.jsonl.part").exists()


def test_a_bundle_over_the_document_limit_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "MAX_DOCUMENT_BYTES", 1000)
    inbox = tmp_path / "inbox"
    settled(inbox, "big.json", json.dumps({"resourceType": "Bundle", "entry": [PATIENT] * 50}))
    records, ends = run(source(inbox, "fhir"))
    assert "refused unread" in str(records[0].error) and len(records[0].raw) <= formats.RAW_KEPT_BYTES
    assert ends[0].position["failed"]
