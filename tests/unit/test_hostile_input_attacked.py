"""Adversarial review of the hostile-input and least-privilege changes: field limits, the file drop's
formats and refusals, HTTP push, the database poll's safety lag, the triage app's outbox, and the
runtime role's grants.

A test that FAILS names a defect (its docstring says what is wrong and what should happen); a test
that passes is an attack that held and is kept as a regression test. Everything runs in process
on SQLite (tmp_path) or on plain files: no broker, no PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import types
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, Table, Text, create_engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.sdk import formats
from connectors.sdk.sources import database as database_source
from connectors.sdk.sources import file_drop, http_push
from connectors.sdk.sources.base import SourceRecord, StreamEnd
from connectors.sdk.sources.database import DatabasePollConfig, DatabasePollSource
from connectors.sdk.sources.file_drop import FileDropConfig, FileDropSource
from connectors.sdk.sources.http_push import HttpPushConfig, HttpPushSource
from mash.codec import Codec
from mash.models import Base, TriageDecisionRecord
from tests.support.triage_data import sealed_decision
from tests.unit.test_file_drop_hostile import run

PATIENT = {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "MRN1", "name": [{"family": "H"}],
                                                  "birthDate": "2016-04-12"}}
ENCOUNTER = {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "EMER"},
                          "subject": {"reference": "urn:uuid:p"},
                          "period": {"start": "2026-11-05T02:15:00Z"}}}
HUGE_INT = "1" * 5000  # past Python's 4,300-digit limit on int(str): json.loads raises a plain ValueError


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def source(inbox: Path, file_format: str = "jsonl", settle_s: float = 0.0, **extra: Any) -> FileDropSource:
    return FileDropSource(FileDropConfig(inbox=inbox, format=file_format, settle_s=settle_s,
                                         **extra))


def settled(inbox: Path, name: str, content: str | bytes) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path




# ===================================================================================================
# 1. JSON that parses into a ValueError: huge integers, lone surrogates
# ===================================================================================================


def test_a_json_line_with_a_huge_integer_is_one_dead_letter_and_the_next_line_is_read(tmp_path: Path) -> None:
    """DEFECT (formats.parse_json): `json.loads` of an integer over 4,300 digits raises a plain
    ValueError (Python's int/str conversion limit), not JSONDecodeError; parse_json catches only
    RecursionError, UnicodeDecodeError and JSONDecodeError, so the error leaves json_lines, the
    file drop's `_read` (which catches OSError only) and the runner: the connector crashes, and
    restarts into the same line for ever, the failure the nesting fix was meant to end. Expected: a
    ParseError for that line (one dead letter) and the next line read."""
    inbox = tmp_path / "inbox"
    settled(inbox, "a.jsonl", '{"x": ' + HUGE_INT + '}\n{"y": 1}\n')
    records, _ = run(source(inbox))
    assert isinstance(records[0].error, formats.ParseError) and records[1].fields == {"y": 1}


def test_a_fhir_bundle_with_a_huge_integer_is_one_document_dead_letter(tmp_path: Path) -> None:
    """DEFECT (formats.parse_json, fhir_bundle): as for JSON lines, a Bundle holding one 5,000-digit
    number raises ValueError out of fhir_bundle (only ParseError is caught around parse_json): the
    health feed crashes and restarts into the same file. Expected: one document dead letter, the file
    moved to failed/."""
    inbox = tmp_path / "inbox"
    bundle = json.dumps({"resourceType": "Bundle", "entry": [PATIENT, ENCOUNTER], "total": 0})
    settled(inbox, "b.json", bundle.replace('"total": 0', '"total": ' + HUGE_INT))
    records, ends = run(source(inbox, "fhir"))
    assert len(records) == 1 and isinstance(records[0].error, formats.ParseError)
    assert ends[0].position["failed"]


def test_an_http_push_body_with_a_huge_integer_is_a_400_and_one_dead_letter_not_a_500() -> None:
    """DEFECT (http_push._records): the same ValueError escapes `_records`, so the handler raises
    and aiohttp answers 500 with nothing dead-lettered; the agency system retries the same body for
    ever. Expected: one record carrying a ParseError (the endpoint's documented 400 + dead letter)."""
    records = http_push._records("push-1", b'{"case_event_id": ' + HUGE_INT.encode() + b"}")
    assert len(records) == 1 and isinstance(records[0].error, formats.ParseError)


def test_an_http_push_record_with_a_lone_surrogate_is_a_dead_letter_not_a_500() -> None:
    """DEFECT (http_push._records): JSON may spell a lone surrogate ("\\ud800"); json.loads accepts
    it, but `_records` re-serialises each item with ensure_ascii=False and `.encode()`s it to UTF-8,
    which raises UnicodeEncodeError: the request is a 500, nothing is dead-lettered, and the agency
    retries the body for ever. Expected: the record kept (its raw bytes escaped, e.g.
    ensure_ascii=True or errors="backslashreplace") and dead-lettered by mapping/encoding like any
    other bad value, the rest of the body read."""
    records = http_push._records("push-1", b'[{"first_name": "\\ud800"}, {"first_name": "Kai"}]')
    assert len(records) == 2 and records[1].fields == {"first_name": "Kai"}


class _Request:
    def __init__(self, body: bytes) -> None:
        self.headers = {"Authorization": "Bearer secret-token"}
        self._body = body

    async def read(self) -> bytes:
        return self._body


def test_an_http_push_body_over_max_records_is_refused_before_a_record_is_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (http_push._handle): the max_records check runs after `_records` has re-serialised every
    item and built a SourceRecord for each. A 5 MB body of `{},{},...` (1.67 million items, under
    max_body_bytes) took 8.8 s of CPU on the server's event loop (every other request waits) and
    ~1 GB of memory before the 413: a handful of such requests from one agency token exhausts the
    connector. Expected: the count checked on the parsed list, before any per-item work."""
    src = HttpPushSource(HttpPushConfig(token_env="UNUSED", max_records=10), token="secret-token")
    calls = []
    real_dumps = json.dumps

    def counting(*args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return str(real_dumps(*args, **kwargs))

    monkeypatch.setattr(json, "dumps", counting)  # the module http_push calls
    response = asyncio.run(src._handle(_Request(b"[" + b",".join([b"{}"] * 5000) + b"]")))  # type: ignore[arg-type]
    assert response.status == 413
    assert len(calls) <= 11, f"{len(calls)} items re-serialised before a request of 5,000 records was refused"


def test_an_http_push_body_of_max_records_five_kilobyte_records_is_refused_by_the_body_cap_first() -> None:
    """Held (observation): 1,000 records of 5 kB is just over max_body_bytes (5,000,000), so the body
    cap refuses it (413) before max_records matters; both limits answer 413, the agency splits."""
    config = HttpPushConfig(token_env="UNUSED")
    record = json.dumps({"detail": "x" * (5000 - 15)})
    body = ("[" + ",".join([record] * config.max_records) + "]").encode()
    assert len(body) > config.max_body_bytes


# ===================================================================================================
# 2. Lines and documents at the caps
# ===================================================================================================


def _line_of(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    line = b'{"x": "' + b"a" * (size - 9) + b'"}'
    assert len(line) == size
    return line


def test_a_line_exactly_at_the_cap_is_read_and_one_byte_over_is_refused_and_the_next_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: a line of MAX_RECORD_BYTES (LF-terminated, or the last line without a newline) is read;
    one byte more is refused with its first bytes kept, and the following line is read."""
    monkeypatch.setattr(formats, "MAX_RECORD_BYTES", 64)
    inbox = tmp_path / "inbox"
    settled(inbox, "a.jsonl", _line_of(64) + b"\n" + _line_of(65) + b"\n" + b'{"y": 1}\n' + _line_of(64))
    records, _ = run(source(inbox))
    assert [r.error is None for r in records] == [True, False, True, True]
    assert "longer than" in str(records[1].error) and records[2].fields == {"y": 1}


def test_a_crlf_line_exactly_at_the_cap_is_read_as_the_same_line_with_lf_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (formats._lines, minor): the cap is applied to the line with its terminator, reading
    MAX_RECORD_BYTES + 1 bytes: room for "\\n" but not "\\r\\n". A record of exactly MAX_RECORD_BYTES
    from a Windows system (CRLF) is refused as over the limit while the same record with LF is read.
    Expected: the terminator, either form, not counted against the record."""
    monkeypatch.setattr(formats, "MAX_RECORD_BYTES", 64)
    inbox = tmp_path / "inbox"
    settled(inbox, "a.jsonl", _line_of(64) + b"\r\n" + b'{"y": 1}\r\n')
    records, _ = run(source(inbox))
    assert [r.error for r in records] == [None, None], records[0].error


@pytest.mark.parametrize("header", ["too long", "UTF-16"])
def test_a_csv_file_whose_header_cannot_be_read_moves_to_failed_not_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: str) -> None:
    """DEFECT (formats.csv_rows): a header over MAX_RECORD_BYTES, or not UTF-8 (a UTF-16 export, as
    Excel writes "Unicode text"), ends the file after one dead letter for line 1, but that record is
    not marked as the document's failure: the file moves to done/ as if read, and every data row in
    it is neither produced nor dead-lettered (conservation counts one record for a file of many).
    Expected: the file is a document failure (position "document": True) and moves to failed/, as
    an unreadable FHIR Bundle does."""
    monkeypatch.setattr(formats, "MAX_RECORD_BYTES", 64)
    inbox = tmp_path / "inbox"
    if header == "too long":
        settled(inbox, "pupils.csv", ",".join(f"column_{n}" for n in range(20)) + "\n" + "1," * 19 + "1\n")
    else:
        settled(inbox, "pupils.csv", "upn,forename\nB801200005001,Kai\nA801200005002,Mia\n".encode("utf-16"))
    records, ends = run(source(inbox, "csv"))
    assert len(records) == 1 and records[0].error is not None
    assert ends[0].position["failed"] and (tmp_path / "failed" / "pupils.csv").exists()


def test_a_fhir_bundle_exactly_at_the_document_cap_is_read_and_one_byte_over_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: the cap is inclusive (size > MAX_DOCUMENT_BYTES is refused unread)."""
    bundle = json.dumps({"resourceType": "Bundle", "entry": [PATIENT, ENCOUNTER]}).encode()
    inbox = tmp_path / "inbox"
    monkeypatch.setattr(formats, "MAX_DOCUMENT_BYTES", len(bundle))
    settled(inbox, "at.json", bundle)
    records, ends = run(source(inbox, "fhir"))
    assert len(records) == 1 and records[0].fields is not None and not ends[0].position["failed"]
    monkeypatch.setattr(formats, "MAX_DOCUMENT_BYTES", len(bundle) - 1)
    settled(inbox, "over.json", bundle)
    records, ends = run(source(inbox, "fhir"))
    assert "refused unread" in str(records[0].error) and ends[0].position["failed"]


def test_the_document_cap_holds_when_the_bundle_grows_after_its_size_was_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (formats.fhir_bundle, TOCTOU): the cap is checked on fstat's size, then `handle.read()`
    reads to the end of the file, however far that is by then. A writer still appending (or a
    hostile one appending after the settle check) gets a document of any size read into memory and
    parsed. Expected: read at most MAX_DOCUMENT_BYTES + 1 bytes and refuse the document if there
    are more."""
    monkeypatch.setattr(formats, "MAX_DOCUMENT_BYTES", 1000)
    inbox = tmp_path / "inbox"
    path = settled(inbox, "grows.json", json.dumps({"resourceType": "Bundle", "entry": [PATIENT, ENCOUNTER]}))
    real_fstat = os.fstat
    calls: list[int] = []

    def fstat_then_append(fd: int) -> os.stat_result:
        status = real_fstat(fd)
        calls.append(fd)
        if len(calls) == 2:  # open_regular's check, then fhir_bundle's size: the writer appends after it
            with path.open("ab") as more:  # valid JSON still: trailing whitespace
                more.write(b" " * 100_000)
        return status

    monkeypatch.setattr(os, "fstat", fstat_then_append)  # the module formats calls
    records = list(formats.fhir_bundle(path))
    monkeypatch.undo()
    assert path.stat().st_size > 100_000
    assert len(records) == 1 and records[0].fields is None and records[0].position.get("document"), \
        "a 100 kB document was read and parsed under a 1,000-byte cap"


# ===================================================================================================
# 3. The file drop: races, special files, clocks
# ===================================================================================================


def test_acknowledging_a_read_file_never_moves_a_new_file_that_took_its_name(tmp_path: Path) -> None:
    """DEFECT (file_drop.acknowledge): `_read` tells a new file from an old one of the same name by
    its size and mtime, but acknowledge moves whatever is at inbox/<name> once the broker confirmed
    the OLD file's records. An agency that writes each export under the same name (write to .part,
    rename over it, the convention the README asks for) while the previous one waits for
    confirmation has its new export moved to done/ unread: every record in it lost, no dead letter.
    Expected: acknowledge moves the file only if its identity is still end.position["file"]."""
    inbox = tmp_path / "inbox"
    settled(inbox, "export.jsonl", '{"x": 1}\n')
    src = source(inbox)
    items = list(src.items({}))
    (end,) = [i for i in items if isinstance(i, StreamEnd)]
    part = inbox / "export.jsonl.part"
    part.write_text('{"x": 2}\n{"x": 3}\n')
    os.replace(part, inbox / "export.jsonl")  # the next export arrives while the first is confirmed
    src.acknowledge(end)
    assert (inbox / "export.jsonl").exists(), "the new, unread export was moved to done/"
    assert (inbox / "export.jsonl").read_text() == '{"x": 2}\n{"x": 3}\n'


def test_a_file_taken_away_between_listing_and_reading_does_not_crash_the_feed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (file_drop._read, minor race): `_settled` copes with a file gone since the listing, but
    `_read` calls `_identity` (lstat) outside its try: a file removed (or renamed away by the agency)
    between the settle check and the read raises FileNotFoundError out of items(), and the
    connector stops. Expected: the file is skipped (the next look will not list it) and the rest read."""
    inbox = tmp_path / "inbox"
    settled(inbox, "a.jsonl", '{"x": 1}\n')
    settled(inbox, "b.jsonl", '{"x": 2}\n')
    real = FileDropSource._settled

    def settled_then_gone(self: FileDropSource, path: Path) -> bool:
        ok = real(self, path)
        if path.name == "a.jsonl":
            path.unlink()
        return ok

    monkeypatch.setattr(FileDropSource, "_settled", settled_then_gone)
    records, _ = run(source(inbox))
    assert [r.fields for r in records] == [{"x": 2}]


def test_a_named_pipe_is_refused_when_failed_is_on_another_filesystem(tmp_path: Path) -> None:
    """DEFECT (file_drop.acknowledge): a refused pipe is moved to failed/ with shutil.move. On one
    filesystem that is a rename; with failed/ (or done/) on another (a mounted volume, tmpfs),
    shutil.move copies, and copying a FIFO raises shutil.SpecialFileError out of acknowledge: the
    runner's commit fails, the connector stops, and on restart meets the same pipe: a crash loop
    from one `mkfifo` in the inbox. Expected: a non-regular file is renamed, or removed with its
    dead letter, never copied; the feed goes on."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second filesystem")
    failed = shm / f"mash-attack-{uuid.uuid4().hex}"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "pipe.jsonl")
    settled(inbox, "z.jsonl", '{"x": 1}\n')
    try:
        records, _ = run(source(inbox, failed=failed))
        assert records[1].fields == {"x": 1} and not (inbox / "pipe.jsonl").exists()
    finally:
        for leftover in failed.glob("*"):
            leftover.unlink()
        if failed.exists():
            failed.rmdir()


def test_a_file_stamped_in_the_future_neither_hangs_a_run_nor_waits_for_ever_unreported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (file_drop._settled): "settled" is `now - mtime >= settle_s`, so a file whose mtime is
    ahead of the connector's clock (a share whose server clock is fast, `touch -d 2099`, an archive
    extracted with its stamps) is "still being written" until then: never read, never
    dead-lettered, and a run without `follow` (mash connector run over a folder) never ends, looking
    at it every 0.2 s. Expected: an mtime ahead of now by more than settle_s is not a write in
    progress: read it (or refuse it with a dead letter), and the run ends."""
    inbox = tmp_path / "inbox"
    path = settled(inbox, "future.jsonl", '{"x": 1}\n')
    ahead = time.time() + 86_400
    os.utime(path, (ahead, ahead))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > 50:
            raise TimeoutError("still waiting for a file stamped tomorrow after 50 looks")

    monkeypatch.setattr(file_drop, "time", types.SimpleNamespace(time=time.time, sleep=sleep))
    records, _ = run(source(inbox, settle_s=1.0))
    assert [r.fields for r in records] == [{"x": 1}] or (records and records[0].error is not None)


def test_a_directory_named_like_a_data_file_is_left_alone_and_the_files_are_read(tmp_path: Path) -> None:
    """Held: a folder called x.jsonl (and a link to a folder) is not a record file: the real file is
    read, the folder stays where it is, nothing crashes; the link is refused and moved as a link."""
    inbox = tmp_path / "inbox"
    (inbox / "x.jsonl").mkdir(parents=True)
    (inbox / "x.jsonl" / "inner.jsonl").write_text('{"inner": 1}\n')
    (inbox / "linked.jsonl").symlink_to(inbox / "x.jsonl")
    settled(inbox, "y.jsonl", '{"y": 1}\n')
    records, _ = run(source(inbox))
    assert [r.fields for r in records if r.error is None] == [{"y": 1}]
    assert (inbox / "x.jsonl" / "inner.jsonl").exists() and (tmp_path / "failed" / "linked.jsonl").is_symlink()


def test_a_utf16_json_lines_file_never_yields_a_record_from_misread_bytes(tmp_path: Path) -> None:
    """Held (observation): a UTF-16 JSON lines file is split on b"\\n" bytes: its first line (BOM)
    parses, every later line starts with the NUL half of the newline and is dead-lettered as not
    JSON (and the NUL after the last newline is one more). Accounted for, never silently misread."""
    inbox = tmp_path / "inbox"
    settled(inbox, "u.jsonl", '{"x": 1}\n{"x": 2}\n{"x": 3}\n'.encode("utf-16"))
    records, _ = run(source(inbox))
    assert records[0].fields == {"x": 1} and all(isinstance(r.error, formats.ParseError) for r in records[1:])
    assert len(records) == 4  # the NUL half of the last newline is a "line" of its own: a fourth dead letter


# ===================================================================================================
# 4. The database poll: NULL cursors, zones
# ===================================================================================================


def _poll_table(tmp_path: Path, kind: str) -> tuple[str, Table, Engine]:
    url = f"sqlite:///{tmp_path / f'{kind}.db'}"
    engine = create_engine(url)
    column_type = {"int": Integer, "datetime": DateTime, "text": Text}[kind]
    table = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("cur", column_type))
    table.metadata.create_all(engine)
    return url, table, engine


def _poll(url: str, checkpoint: dict[str, Any] | None = None, **config: Any) -> list[SourceRecord]:
    poll = DatabasePollConfig.model_validate({"url": url, "streams": [{"table": "rows", "cursor": "cur", "key": "id"}],
                                              **config})
    return [i for i in DatabasePollSource(poll).items({"rows": checkpoint} if checkpoint else {})
            if isinstance(i, SourceRecord)]


@pytest.mark.parametrize("kind", ["int", "text"])
def test_a_row_with_a_null_cursor_does_not_poison_the_checkpoint(tmp_path: Path, kind: str) -> None:
    """DEFECT (database._new_rows): a row whose cursor is NULL is read (NULLs sort first on SQLite,
    last on PostgreSQL), and its NULL becomes the checkpoint's cursor. Every later poll then builds
    `cursor > None`, which SQLAlchemy refuses (ArgumentError): the feed stops at once and, the
    checkpoint being saved, on every restart. One NULL in an agency's updated_at (or sequence)
    column ends the feed for good. Expected: a NULL-cursor row is refused (a dead letter naming
    it) and never becomes the checkpoint; later rows are read."""
    url, table, engine = _poll_table(tmp_path, kind)
    with engine.begin() as db:
        db.execute(insert(table), [{"id": 1, "cur": None}])
    first = _poll(url)
    checkpoint = first[-1].position if first else None
    with engine.begin() as db:
        later = [2, 3] if kind == "int" else ["2020-01-01 10:00:00", "2020-01-01 11:00:00"]
        db.execute(insert(table), [{"id": 2, "cur": later[0]}, {"id": 3, "cur": later[1]}])
    second = _poll(url, checkpoint)
    assert [r.fields["id"] for r in second if r.fields] == [2, 3]


def test_a_row_with_a_null_date_time_cursor_is_not_dropped_silently(tmp_path: Path) -> None:
    """DEFECT (database._settled_before): with a date-time cursor the safety lag adds `cursor <= limit`,
    which a NULL never satisfies (and `cursor > last` neither): the row is never read and never
    dead-lettered; conservation (source records = produced + dead-lettered) cannot see it.
    Expected: the row is accounted for (a dead letter saying its cursor is empty)."""
    url, table, engine = _poll_table(tmp_path, "datetime")
    with engine.begin() as db:
        db.execute(insert(table), [{"id": 1, "cur": None}, {"id": 2, "cur": datetime(2020, 1, 1, 10)}])
    records = _poll(url)
    empty = [r for r in records if r.label == "rows:1"] or [r for r in records if r.label.endswith(":1")]
    assert empty and empty[0].error is not None and "cursor column" in str(empty[0].error), \
        [(r.label, r.error) for r in records]


class _SummerNoon(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> Any:
        moment = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
        return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)


def test_the_safety_lag_holds_for_a_naive_utc_text_cursor_in_summer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFECT (database._cursor_format vs fields.parse_revised_at): the SDK reads one naive text
    cursor two ways. parse_revised_at (the education connector's revised_at) takes it as UTC ("a
    time without a zone is the database's UTC (a poll cursor column)"), as SQLite's CURRENT_TIMESTAMP
    writes and as the shipped school.sql stamps it ('2026-11-06 15:15:00' beside raised_at
    '...15:15:00Z'); the safety lag takes it in `timezone` (Europe/London by default). From March to
    October the limit is then an hour ahead of the stamps: a row stamped 5 s ago is read at once,
    the lag protects nothing for half the year. Expected: a row stamped within safety_lag_s of now
    waits, the cursor interpreted the same way as revised_at."""
    url, table, engine = _poll_table(tmp_path, "text")
    noon = datetime(2026, 7, 1, 12, 0, 0)
    with engine.begin() as db:
        db.execute(insert(table), [{"id": 1, "cur": (noon - timedelta(hours=2)).isoformat(sep=" ")},
                                   {"id": 2, "cur": (noon - timedelta(seconds=5)).isoformat(sep=" ")}])
    monkeypatch.setattr(database_source, "datetime", _SummerNoon)
    assert [r.fields["id"] for r in _poll(url) if r.fields] == [1]


def test_the_safety_lag_holds_for_an_aware_text_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: date-times kept as text with an offset ("Z" or "+00:00") are compared in the sample's
    zone; a row stamped 5 s ago waits, one two hours old is read."""
    url, table, engine = _poll_table(tmp_path, "text")
    noon = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    with engine.begin() as db:
        db.execute(insert(table), [{"id": 1, "cur": (noon - timedelta(hours=2)).isoformat()},
                                   {"id": 2, "cur": (noon - timedelta(seconds=5)).isoformat()}])
    monkeypatch.setattr(database_source, "datetime", _SummerNoon)
    assert [r.fields["id"] for r in _poll(url) if r.fields] == [1]


# ===================================================================================================
# 5. Field limits: what enrichment checks against what the columns hold
# ===================================================================================================

KAI = {"forename": "Kai", "surname": "Dunn", "sex": "M", "incident_type": "MISSING_EPISODE", "child_role": "OTHER",
       "children_present": True, "risk_grading": "MEDIUM", "summary": None, "consent": "NOT_SOUGHT",
       "dob": "2014-01-02", "postcode": "LS1 1AA", "occurred_at": "2026-11-03T10:00:00Z"}


def _police(n: int) -> dict[str, Any]:
    return {**KAI, "ppn_id": f"PPN-A-{n}", "person_ref": f"P-A-{n}", "incident_ref": f"1{n}", "nhs_number": None}


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _inbound(tmp_path: Path, change: Any = None, n: int = 3) -> list[Any]:
    from connectors.registry import build_connector
    from services.messages import InMessage

    codec, connector = Codec(), build_connector("police", tmp_path / "connector")
    events = [connector.to_event(connector.map(_police(i))) for i in range(n)]
    if change:
        change(events[1]["envelope"])
    return [InMessage("mash.inbound.police.v1", 0, i, b"k", codec.encode(e, connector.schema, check_types=False))
            for i, e in enumerate(events)]


@pytest.mark.parametrize(("field", "value", "column"), [
    ("event_type", "police." + "x" * 100, "timeline_events.event_type String(64)"),
    ("event_id", "e" * 40, "person_events.event_id String(36)"),
    ("record_id", "r" * 40, "record_links.record_id String(36)"),
    ("local_id", "P-A-\x00-1", "person_identifiers.value (PostgreSQL text cannot hold NUL)"),
])
def test_every_agency_controlled_envelope_string_that_reaches_a_column_is_checked_by_enrichment(
        tmp_path: Path, sessions: sessionmaker[Session], field: str, value: str, column: str) -> None:
    """DEFECT (mash/limits.py, enrichment OverLimitEvent): the limits cover the subject, source_record_id
    and revision only. A producer publishing straight to an inbound topic also controls event_type
    (free string; timeline_events.event_type is String(64)), event_id and record_id (logicalType uuid,
    but decoded as plain strings, unchecked; every event_id/record_id column is String(36)), and may
    put NUL in any string. Tried on PostgreSQL (the runtime role): an event_type of 107 characters
    passes enrichment AND sharing (sealed into the audit chain as shared with every role, views
    sent on mash.shared.v1) and is then a DataError dead letter at triage, so the audit says it was
    shared while the app never shows it; an event_id or record_id of 40 characters, or a NUL in
    local_id, is a DataError at enrichment, found by bisecting the batch, with the reason "value too
    long for type character varying(36)" instead of the field's name. On SQLite all of them flow
    through every stage. Expected: enrichment refuses them (OverLimitEvent naming the field; a uuid
    field that is not a uuid; no NUL), one dead letter on every database, before anything is sealed."""
    from services.enrichment.person_index import PersonIndex
    from services.enrichment.stage import Enricher

    def change(envelope: dict[str, Any]) -> None:
        target = envelope["subject"] if field == "local_id" else envelope
        target[field] = value

    out = Enricher(Codec(), PersonIndex(sessions)).process(_inbound(tmp_path, change))
    assert [m.topic for m in out] == ["mash.deadletter.v1", "mash.enriched.v1", "mash.enriched.v1"], column


def test_a_name_that_nfkd_lengthens_past_the_column_is_held_to_it() -> None:
    """Held: 64 ligatures (within the limit) normalise to 192 letters and are cut to the 64 the index
    holds; a name of 64 characters each with a combining accent counts 128 code points and is refused
    at the limit (PostgreSQL's varchar counts code points too)."""
    from mash.limits import over_limit
    from services.enrichment.comparisons import normalise_name

    ligatures = "\ufb03" * 64
    assert over_limit({"given_name": ligatures}) is None and len(normalise_name(ligatures)) == 64
    assert over_limit({"family_name": "e\u0301" * 64}) is not None


# ===================================================================================================
# 6. The triage app's outbox
# ===================================================================================================


def test_an_unsendable_decision_is_recorded_and_counted_once_even_while_no_broker_answers(
        sessions: sessionmaker[Session]) -> None:
    """DEFECT (outbox._send_decisions, minor): `_encoded` sets send_error and increments
    mash_outbox_unsendable_total inside the flush's transaction; when no broker answers, `_send`
    raises ConnectionError, the transaction rolls back and send_error is lost, so the next flush
    (every 5 s) encodes the row again and counts it again. Through an outage of an hour one bad
    decision is counted ~720 times and its send_error is not there for the operator the runbook
    sends to it. Expected: the encode failure is recorded (and counted) once, whether or not the
    broker answers."""
    from mash import metrics
    from services.triage_app.outbox import Outbox

    start = datetime(2026, 11, 30, 9, tzinfo=UTC)
    with sessions.begin() as session:
        for n, outcome in enumerate(("NOT_AN_OUTCOME", "EARLY_HELP")):
            sealed_decision(session, f"00000000-0000-4000-8000-00000000000{n}", outcome, start + timedelta(minutes=n))
    counter = metrics.OUTBOX_UNSENDABLE.labels("TriageDecisionRecord")
    before = counter._value.get()
    outbox = Outbox(sessions, "127.0.0.1:1", "mash.decisions.v1", "mash.match_answers.v1", Codec())
    assert outbox.flush() == 0 and outbox.flush() == 0  # no broker: nothing sent
    with sessions() as session:
        error = session.scalar(select(TriageDecisionRecord.send_error)
                               .where(TriageDecisionRecord.outcome == "NOT_AN_OUTCOME"))
    assert (counter._value.get() - before, error is not None) == (1, True)


# ===================================================================================================
# 7. Least privilege: the grants, and what the runtime role can still write
# ===================================================================================================


class _Recording:
    def __init__(self) -> None:
        from sqlalchemy.dialects.postgresql.psycopg import dialect

        self.dialect = dialect()  # type: ignore[no-untyped-call]
        self.statements: list[str] = []

    def exec_driver_sql(self, statement: str) -> None:
        self.statements.append(statement)


def test_grant_runtime_quotes_a_hostile_role_and_grants_no_update_or_delete_on_the_audit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Held: the role (from the URL's user when MASH_DATABASE_RUNTIME_ROLE is empty: any text) is
    quoted as one identifier; the audit tables get SELECT, INSERT only; alembic_version SELECT only;
    every other table of the models rows (the hub deletes from person_identifiers, record_links,
    record_identifiers, person_* on release and merge, and updates persons, alerts, match_reviews,
    users, triage_decisions); sequences USAGE, SELECT (nextval for alert_actions and audit positions)."""
    from mash import db_roles

    hostile = 'x" ; DROP TABLE users; --'
    tables = [*sorted(Base.metadata.tables), "alembic_version"]
    monkeypatch.setattr(db_roles, "inspect", lambda _c: types.SimpleNamespace(get_table_names=lambda: tables))
    connection = _Recording()
    statements = db_roles.grant_runtime(connection, hostile)  # type: ignore[arg-type]
    quoted = '"x"" ; DROP TABLE users; --"'
    assert all(s.endswith(quoted) or "FROM PUBLIC" in s for s in statements)
    assert all(s.count(";") == hostile.count(";") for s in statements if quoted in s)  # only those quoted
    audit = [s for s in statements if '"audit_records"' in s or '"audit_decision_sets"' in s
             or " audit_records " in s or " audit_decision_sets " in s]
    assert audit and all("UPDATE" not in s and "DELETE" not in s for s in audit)
    rows = {s.split(" ON ")[1].split(" TO ")[0].strip('"') for s in statements if "UPDATE, DELETE" in s}
    assert rows == set(Base.metadata.tables) - set(db_roles.AUDIT_TABLES) - set(db_roles.READ_ONLY_TABLES)
    read_only = {s.split(" ON ")[1].split(" TO ")[0].strip('"') for s in statements if s.startswith("GRANT SELECT ON")}
    # where signing and sealing began: not the processes' to move
    assert read_only == {"alembic_version", "audit_signing_began", "alerts_before_sealing", "merges_before_sealing",
                         "sealing_began"}


def test_the_runtime_role_is_never_the_schema_owner() -> None:
    """DEFECT (db_roles.runtime_role, minor, PostgreSQL): MASH_DATABASE_RUNTIME_ROLE is taken as given.
    Set to the owner's own role (or the processes' URL naming the owner with the role set), `mash db
    upgrade` runs REVOKE ALL ... FROM the owner, re-grants it rows and SELECT, INSERT on the audit,
    and prints "granted the processes' role least privilege"; tried on PostgreSQL 15: the owner
    can still DISABLE the append-only trigger (and GRANT itself UPDATE back), so the processes keep
    every power the README says they lack, while the command reports the opposite. Expected:
    refuse (or at least warn about) a runtime role that is the owner, a member of it, or a superuser."""
    from mash.db_roles import runtime_role

    owner = "postgresql+psycopg://mash_owner:pw@db/mash"
    try:
        role = runtime_role(owner, owner, "mash_owner")
    except ValueError:
        return
    assert role != "mash_owner"


def _forged_decisions(real: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**d, "outcome": "SHARE", "fields_shared": sorted({*d["fields_shared"], *d["fields_withheld"]}),
             "fields_withheld": [], "rule_ids": ["forged"]} for d in real]


def test_an_audit_entry_forged_by_the_runtime_role_for_a_future_event_is_not_trusted(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """Was a known open issue (fixed by signed entries, services/sharing/audit_signing.py): the runtime
    role has SELECT and INSERT on audit_records and audit_decision_sets (checked on PostgreSQL:
    mash_runtime=ar). An entry is keyed by "<event_id>/hub:sharing"; event ids are visible to that
    role in person_events and link_decisions as soon as enrichment links an event, before sharing
    decides it. Whoever holds the role inserts a decision set sharing every field with every role
    and an entry for that event on a chain of its own (seq 1 after the genesis hash: the hash is
    unkeyed SHA-256). `mash audit verify` reports the trail intact, and when the event reaches
    sharing `_seal` finds the entry, takes it as a redelivery and sends the forged views. Expected
    (if it is to hold): the stage trusts only entries on its own chains that it can tie to its own
    writes (or a keyed MAC / signature over entries), and verify flags a chain nobody should write.
    Now: the forged entry is unsigned, so the stage decides the event afresh and keyed verification
    names the forged chain."""
    from mash.settings import PROJECT_ROOT, get_settings
    from services.enrichment.person_index import PersonIndex
    from services.enrichment.stage import Enricher
    from services.messages import InMessage
    from services.sharing import audit_store
    from services.sharing.audit_chain import GENESIS, canonical, verify
    from services.sharing.audit_keys import audit_keys
    from services.sharing.policy_source import PolicySource
    from services.sharing.stage import Sharer

    codec = Codec()
    enriched = [InMessage("mash.enriched.v1", 0, n, m.key, m.value)
                for n, m in enumerate(Enricher(codec, PersonIndex(sessions)).process(_inbound(tmp_path, n=2)))]
    policy = PolicySource(PROJECT_ROOT / "policies" / "sharing" / "default.yaml")
    honest = Sharer(codec, sessionmaker(_fresh_engine(tmp_path)), policy).process(enriched[1:])
    Sharer(codec, sessions, policy).process(enriched[:1])  # an ordinary event first: a real decision set
    with sessions() as session:
        (first,) = list(audit_store.read_chains(session))
    target = codec.decode(enriched[1].value)[0]["envelope"]["event_id"]
    forged = canonical(_forged_decisions(orjson.loads(first.decisions or "[]")))
    digest = hashlib.sha256(forged.encode()).hexdigest()
    body = canonical({**first.record, "event_id": target, "decisions_digest": digest, "chain": "p9", "seq": 1,
                      "prev_hash": GENESIS})
    with sessions.begin() as session:  # what the runtime role may do: SELECT and INSERT
        session.connection().execute(insert(audit_store.SETS), [{"digest": digest, "body": forged}])
        session.connection().execute(insert(audit_store.ENTRIES), [{
            "chain": "p9", "seq": 1, "prev_hash": GENESIS, "hash": hashlib.sha256(body.encode()).hexdigest(),
            "event_id": target, "decision_key": f"{target}/hub:sharing", "decisions_digest": digest, "body": body}])
    with sessions() as session:
        assert verify(audit_store.read_chains(session)).broken is None  # unkeyed, the forgery verifies
        keyed = verify(audit_store.read_chains(session), audit_keys(get_settings()))
    assert keyed.broken is not None and keyed.broken.chain == "p9" and "not signed" in keyed.broken.problem
    sent = Sharer(codec, sessions, policy).process(enriched[1:])
    views = [codec.decode(m.value)[0]["views"] for m in sent if m.topic == "mash.shared.v1"]
    expected = [codec.decode(m.value)[0]["views"] for m in honest if m.topic == "mash.shared.v1"]
    assert views == expected, "the forged decisions were sent as the hub's"


def _fresh_engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'honest.db'}")
    Base.metadata.create_all(engine)
    return engine
