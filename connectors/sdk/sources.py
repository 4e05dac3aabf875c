"""Source files: JSON lines and CSV, read record by record with their positions.

A line that does not parse is still yielded, with its raw bytes and the parse error, so the SDK
can dead-letter it instead of losing it or stopping.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SourceRecord:
    position: str  # e.g. "ppn.jsonl:7"
    raw: bytes
    fields: dict[str, Any] | None
    error: Exception | None = None


class ParseError(ValueError):
    """A source line is not a record of the file's format."""


def read_records(path: Path) -> Iterator[SourceRecord]:
    if path.suffix == ".jsonl":
        yield from _json_lines(path)
    elif path.suffix == ".csv":
        yield from _csv_rows(path)
    else:
        raise ValueError(f"{path}: unsupported source format {path.suffix!r}; use .jsonl or .csv")


def _json_lines(path: Path) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            position = f"{path.name}:{number}"
            try:
                fields = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                yield SourceRecord(position, raw, None, ParseError(f"not valid JSON: {exc}"))
                continue
            if not isinstance(fields, dict):
                yield SourceRecord(position, raw, None,
                                   ParseError(f"a JSON object was expected, got {type(fields).__name__}"))
                continue
            yield SourceRecord(position, raw, fields)


def _csv_rows(path: Path) -> Iterator[SourceRecord]:
    with path.open("rb") as handle:
        lines = iter(handle)
        header_line = next(lines, b"")
        header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
        for number, line in enumerate(lines, start=2):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            position = f"{path.name}:{number}"
            try:
                row = next(csv.reader(io.StringIO(raw.decode("utf-8"))))
            except (UnicodeDecodeError, csv.Error) as exc:
                yield SourceRecord(position, raw, None, ParseError(f"not a CSV row: {exc}"))
                continue
            if len(row) != len(header):
                yield SourceRecord(position, raw, None,
                                   ParseError(f"{len(row)} columns, the header has {len(header)}"))
                continue
            yield SourceRecord(position, raw, dict(zip(header, row, strict=True)))
