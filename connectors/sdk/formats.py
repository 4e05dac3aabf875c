"""Record formats of source files: JSON lines, CSV and HL7 FHIR R4 Bundles.

Each format turns a file's bytes into records with their positions. Something that does not
parse is still yielded, with its raw bytes and the parse error, so the SDK can dead-letter it
instead of losing it or stopping.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from connectors.sdk.fhir import encounter_records
from connectors.sdk.sources.base import SourceRecord
from connectors.sdk.uk_core import FhirCodes, load_codes

MAX_RECORD_BYTES = 1 << 20  # one line (one record) larger than this is refused, never held whole
MAX_DOCUMENT_BYTES = 64 << 20  # a FHIR Bundle file larger than this is refused unread
RAW_KEPT_BYTES = 4096  # of a refused over-long line, what the dead letter carries


class ParseError(ValueError):
    """A source line or document is not a record of the file's format."""


class NotARegularFile(OSError):
    """A symbolic link, device, pipe or socket where a file was expected: never opened or followed."""


def open_regular(path: Path) -> IO[bytes]:
    """`path` opened for reading only if it is a regular file: a symbolic link is refused, not
    followed (a link to /proc/self/environ must not put its contents on the dead-letter topic)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if path.is_symlink():
            raise NotARegularFile(f"{path.name} is a symbolic link; links are refused, never followed") from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFile(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")


def _lines(handle: IO[bytes]) -> Iterator[tuple[bytes, bool]]:
    """The lines of `handle`, each at most MAX_RECORD_BYTES: a longer one is read past in pieces,
    never held whole, and given as its first bytes with True (refused)."""
    while True:
        line = handle.readline(MAX_RECORD_BYTES + 2)  # the record and its line ending (CRLF or LF)
        if not line:
            return
        ended = line.endswith(b"\n")
        if len(line.rstrip(b"\r\n")) > MAX_RECORD_BYTES or (not ended and len(line) > MAX_RECORD_BYTES):
            head = line[:RAW_KEPT_BYTES]
            while line and not line.endswith(b"\n"):
                line = handle.readline(MAX_RECORD_BYTES)
            yield head, True
        else:
            yield line, False


def _too_long(path: Path, number: int, head: bytes) -> SourceRecord:
    return _record(path, number, head, None,
                   ParseError(f"the line is longer than {MAX_RECORD_BYTES:,} bytes; refused unread"))


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:
        raise ParseError("JSON nested too deeply to be a record") from None
    except ValueError as exc:  # not JSON, not UTF-8, or a number too long to read (over 4,300 digits)
        raise ParseError(f"not valid JSON: {str(exc)[:300]}") from None


Reader = Callable[[Path, int], Iterator[SourceRecord]]


def read_records(path: Path, after: int = 0, file_format: str | None = None,
                 fhir_codes: Path | None = None) -> Iterator[SourceRecord]:
    """Records of `path` whose position number is greater than `after` (a checkpoint). FHIR
    Bundles are read with the deployment's code list (`fhir_codes`), else the shipped one."""
    name = file_format or _FORMAT_OF_SUFFIX.get(path.suffix, "")
    if name not in READERS:
        raise ValueError(f"{path}: unsupported source format {path.suffix!r}; use one of {sorted(READERS)}")
    if name == "fhir" and fhir_codes is not None:
        return fhir_bundle(path, after, codes_at(fhir_codes))
    return READERS[name](path, after)


def _record(path: Path, number: int, raw: bytes, fields: dict[str, Any] | None,
            error: Exception | None = None, unit: str = "") -> SourceRecord:
    label = f"{path.name}:{number}" if not unit else f"{path.name}#{unit}={number}"
    return SourceRecord(stream=path.name, position={"n": number}, label=label, raw=raw, fields=fields,
                        error=error)


def json_lines(path: Path, after: int = 0) -> Iterator[SourceRecord]:
    with open_regular(path) as handle:
        for number, (line, too_long) in enumerate(_lines(handle), start=1):
            raw = line.rstrip(b"\r\n")
            if number <= after or not raw.strip():
                continue
            if too_long:
                yield _too_long(path, number, raw)
                continue
            try:
                fields = parse_json(raw)
            except ParseError as exc:
                yield _record(path, number, raw, None, exc)
                continue
            if not isinstance(fields, dict):
                error = ParseError(f"a JSON object was expected, got {type(fields).__name__}")
                yield _record(path, number, raw, None, error)
                continue
            yield _record(path, number, raw, fields)


def csv_rows(path: Path, after: int = 0) -> Iterator[SourceRecord]:
    """One record per line (fields with embedded newlines are not supported by agency exports)."""
    with open_regular(path) as handle:
        lines = _lines(handle)
        header_line, header_too_long = next(lines, (b"", False))
        if header_too_long:  # without a header no row can be read: the whole file fails
            yield _document_error(path, header_line, ParseError(
                f"the header line is longer than {MAX_RECORD_BYTES:,} bytes; the file is refused"))
            return
        try:
            header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
        except (UnicodeDecodeError, csv.Error) as exc:
            yield _document_error(path, header_line[:RAW_KEPT_BYTES], ParseError(
                f"the header is not a UTF-8 CSV row ({exc}); the file is refused"))
            return
        for number, (line, too_long) in enumerate(lines, start=2):
            raw = line.rstrip(b"\r\n")
            if number <= after or not raw.strip():
                continue
            if too_long:
                yield _too_long(path, number, raw)
                continue
            try:
                row = next(csv.reader(io.StringIO(raw.decode("utf-8"))))
            except (UnicodeDecodeError, csv.Error) as exc:
                yield _record(path, number, raw, None, ParseError(f"not a UTF-8 CSV row: {exc}"))
                continue
            if len(row) != len(header):
                yield _record(path, number, raw, None,
                              ParseError(f"{len(row)} columns, the header has {len(header)}"))
                continue
            yield _record(path, number, raw, dict(zip(header, row, strict=True)))


@lru_cache(maxsize=8)
def codes_at(path: Path) -> FhirCodes:
    return load_codes(path)


def fhir_bundle(path: Path, after: int = 0, codes: FhirCodes | None = None) -> Iterator[SourceRecord]:
    """One record per Encounter in a FHIR R4 (UK Core) Bundle, joined with its Patient and Flags."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_DOCUMENT_BYTES:
            yield _document_error(path, handle.read(RAW_KEPT_BYTES), ParseError(
                f"the document is {size:,} bytes; the limit is {MAX_DOCUMENT_BYTES:,}; refused unread"))
            return
        raw = handle.read(MAX_DOCUMENT_BYTES + 1)  # the file may have grown since its size was taken
    if len(raw) > MAX_DOCUMENT_BYTES:
        yield _document_error(path, raw[:RAW_KEPT_BYTES], ParseError(
            f"the document is over {MAX_DOCUMENT_BYTES:,} bytes; refused"))
        return
    try:
        bundle = parse_json(raw)
    except ParseError as exc:
        yield _document_error(path, raw[:RAW_KEPT_BYTES], ParseError(f"not a JSON document: {exc}"))
        return
    number = 0
    try:
        for number, (entry_raw, fields, error) in enumerate(encounter_records(bundle, codes), start=1):
            if number > after:
                parse_error = ParseError(error) if error else None
                yield _record(path, number, entry_raw, fields, parse_error, unit="encounter")
    except (RecursionError, ValueError, TypeError, AttributeError, KeyError) as exc:  # a shape no check foresaw
        yield _document_error(path, raw[:RAW_KEPT_BYTES], ParseError(
            f"the Bundle could not be read past encounter {number}: {type(exc).__name__}: {exc}"), number)


def _document_error(path: Path, raw: bytes, error: ParseError, number: int = 0) -> SourceRecord:
    """The whole file (or what is left of it) fails as one record: the file moves to failed/."""
    record = _record(path, number, raw, None, error, unit="bundle")
    return SourceRecord(record.stream, {"n": number, "document": True}, record.label, raw, None, record.error)


READERS: dict[str, Reader] = {"jsonl": json_lines, "csv": csv_rows, "fhir": fhir_bundle}
_FORMAT_OF_SUFFIX = {".jsonl": "jsonl", ".csv": "csv", ".json": "fhir"}
