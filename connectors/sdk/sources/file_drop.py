"""A file drop folder: agency systems write files into `inbox/`; each is read once.

A file whose records were all read (bad ones dead-lettered with their line numbers) moves to
`done/` once the broker has confirmed them; a file that cannot be read at all moves to
`failed/` with one dead letter saying why. A restart resumes inside a half-read file after its
last confirmed record.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.sdk.config import ConnectorConfig
from connectors.sdk.formats import read_records
from connectors.sdk.sources.base import IDLE, Item, Source, SourceRecord, StreamEnd


class FileDropConfig(ConnectorConfig):
    inbox: Path = Field(description="Folder the agency system drops files into.")
    done: Path | None = Field(None, description="Where finished files go (default: inbox/../done).")
    failed: Path | None = Field(None, description="Where unreadable files go (default: inbox/../failed).")
    pattern: str = Field("*", description="Which files in the inbox to read, e.g. '*.jsonl'.")
    format: Literal["jsonl", "csv", "fhir"] = Field(description="The files' record format.")
    follow: bool = Field(False, description="Keep watching the inbox instead of stopping when it is empty.")
    poll_interval_s: float = Field(2.0, gt=0, description="How often a followed inbox is looked at.")


class FileDropSource(Source):
    def __init__(self, config: FileDropConfig) -> None:
        self.config = config
        self.done = config.done or config.inbox.parent / "done"
        self.failed = config.failed or config.inbox.parent / "failed"

    def items(self, checkpoints: dict[str, dict[str, Any]]) -> Iterator[Item]:
        if not self.config.inbox.is_dir():
            raise FileNotFoundError(f"inbox {self.config.inbox} does not exist; create it or fix `inbox`")
        while self.running:
            for path in sorted(p for p in self.config.inbox.glob(self.config.pattern) if p.is_file()):
                if not self.running:
                    return
                yield from self._read(path, checkpoints.get(path.name, {}))
            if not self.config.follow:
                return
            yield IDLE
            time.sleep(self.config.poll_interval_s)

    def _read(self, path: Path, checkpoint: dict[str, Any]) -> Iterator[Item]:
        identity = _identity(path)
        if checkpoint.get("file") != identity:  # a new file, even if an old one had its name
            checkpoint = {}
        last, failed = int(checkpoint.get("n", 0)), bool(checkpoint.get("failed"))
        if not checkpoint.get("complete"):
            try:
                for record in read_records(path, after=last, file_format=self.config.format):
                    last = int(record.position["n"])
                    failed = failed or bool(record.position.get("document"))
                    yield _with_identity(record, identity)
            except OSError as exc:
                failed = True
                yield SourceRecord(path.name, {"n": last, "file": identity}, path.name, b"", None,
                                   OSError(f"cannot read {path.name}: {exc}"))
        yield StreamEnd(path.name, {"n": last, "file": identity, "complete": True, "failed": failed})

    def acknowledge(self, end: StreamEnd, dead_lettered: Sequence[tuple[str, str]] = ()) -> None:
        target = self.failed if end.position.get("failed") else self.done
        target.mkdir(parents=True, exist_ok=True)
        source = self.config.inbox / end.stream
        if source.exists():
            shutil.move(str(source), target / end.stream)


def _identity(path: Path) -> str:
    """Tells a file from a later one of the same name: its size and modification time."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _with_identity(record: SourceRecord, identity: str) -> SourceRecord:
    return SourceRecord(record.stream, {**record.position, "file": identity}, record.label, record.raw,
                        record.fields, record.error)
