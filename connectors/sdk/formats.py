"""Record formats of source files: JSON lines, CSV and HL7 FHIR R4 Bundles.

Each format turns a file's bytes into records with their positions. Something that does not
parse is still yielded, with its raw bytes and the parse error, so the SDK can dead-letter it
instead of losing it or stopping.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from connectors.sdk.fhir import encounter_records
from connectors.sdk.sources.base import SourceRecord


class ParseError(ValueError):
    """A source line or document is not a record of the file's format."""


Reader = Callable[[Path, int], Iterator[SourceRecord]]


def read_records(path: Path, after: int = 0, file_format: str | None = None) -> Iterator[SourceRecord]:
    """Records of `path` whose position number is greater than `after` (a checkpoint)."""
    name = file_format or _FORMAT_OF_SUFFIX.get(path.suffix, "")
    if name not in READERS:
        raise ValueError(f"{path}: unsupported source format {path.suffix!r}; use one of {sorted(READERS)}")
    return READERS[name](path, after)


def _record(path: Path, number: int, raw: bytes, fields: dict[str, Any] | None,
            error: Exception | None = None, unit: str = "") -> SourceRecord:
    label = f"{path.name}:{number}" if not unit else f"{path.name}#{unit}={number}"
    return SourceRecord(stream=path.name, position={"n": number}, label=label, raw=raw, fields=fields,
                        error=error)


def json_lines(path: Path, after: int = 0) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if number <= after or not raw.strip():
                continue
            try:
                fields = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield _record(path, number, raw, None, ParseError(f"not valid JSON: {exc}"))
                continue
            if not isinstance(fields, dict):
                error = ParseError(f"a JSON object was expected, got {type(fields).__name__}")
                yield _record(path, number, raw, None, error)
                continue
            yield _record(path, number, raw, fields)


def csv_rows(path: Path, after: int = 0) -> Iterator[SourceRecord]:
    """One record per line (fields with embedded newlines are not supported by agency exports)."""
    with path.open("rb") as handle:
        lines = iter(handle)
        header_line = next(lines, b"")
        try:
            header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
        except UnicodeDecodeError as exc:
            yield _record(path, 1, header_line, None, ParseError(f"the header is not UTF-8: {exc}"))
            return
        for number, line in enumerate(lines, start=2):
            raw = line.rstrip(b"\r\n")
            if number <= after or not raw.strip():
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


def fhir_bundle(path: Path, after: int = 0) -> Iterator[SourceRecord]:
    """One record per Encounter in a FHIR R4 Bundle, joined with its Patient and Flags."""
    raw = path.read_bytes()
    try:
        bundle = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        record = _record(path, 0, raw, None, ParseError(f"not a JSON document: {exc}"), unit="bundle")
        yield SourceRecord(record.stream, {"n": 0, "document": True}, record.label, raw, None, record.error)
        return
    for number, (entry_raw, fields, error) in enumerate(encounter_records(bundle), start=1):
        if number > after:
            parse_error = ParseError(error) if error else None
            yield _record(path, number, entry_raw, fields, parse_error, unit="encounter")


READERS: dict[str, Reader] = {"jsonl": json_lines, "csv": csv_rows, "fhir": fhir_bundle}
_FORMAT_OF_SUFFIX = {".jsonl": "jsonl", ".csv": "csv", ".json": "fhir"}
