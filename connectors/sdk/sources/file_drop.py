"""A file drop folder: agency systems write files into `inbox/`; each is read once.

A file whose records were all read (bad ones dead-lettered with their line numbers) moves to
`done/` once the broker has confirmed them; a file that cannot be read at all moves to
`failed/` with one dead letter saying why. A restart resumes inside a half-read file after its
last confirmed record.

Only settled regular files are taken: one still being written (a name starting with "." or
ending ".part" or ".tmp", the atomic-rename convention, or modified within `settle_s`) waits; a
symbolic link, pipe or device is refused with a dead letter and moved to `failed/`, never opened
or followed.
"""

from __future__ import annotations

import shutil
import stat
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from connectors.sdk.config import ConnectorConfig
from connectors.sdk.formats import read_records
from connectors.sdk.sources.base import IDLE, Item, Source, SourceRecord, StreamEnd
from connectors.sdk.uk_core import load_codes


class FileDropConfig(ConnectorConfig):
    inbox: Path = Field(description="Folder the agency system drops files into.")
    done: Path | None = Field(None, description="Where finished files go (default: inbox/../done).")
    failed: Path | None = Field(None, description="Where unreadable files go (default: inbox/../failed).")
    pattern: str = Field("*", description="Which files in the inbox to read, e.g. '*.jsonl'.")
    format: Literal["jsonl", "csv", "fhir"] = Field(description="The files' record format.")
    fhir_codes: Path | None = Field(None, description=(
        "FHIR only: the SNOMED CT code list (YAML, the shape of connectors/sdk/fhir_codes.yaml) that marks "
        "safeguarding concerns and child protection flags; default: the shipped list."))
    follow: bool = Field(False, description="Keep watching the inbox instead of stopping when it is empty.")
    poll_interval_s: float = Field(2.0, gt=0, description="How often a followed inbox is looked at.")
    settle_s: float = Field(1.0, ge=0, le=300,
                            description="A file modified more recently than this is still being written: wait.")

    @field_validator("fhir_codes")
    @classmethod
    def _codes_readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            load_codes(path)  # a list that cannot be read stops the connector at start, not at each file
        return path


class FileDropSource(Source):
    def __init__(self, config: FileDropConfig) -> None:
        self.config = config
        self.done = config.done or config.inbox.parent / "done"
        self.failed = config.failed or config.inbox.parent / "failed"

    def items(self, checkpoints: dict[str, dict[str, Any]]) -> Iterator[Item]:
        if not self.config.inbox.is_dir():
            raise FileNotFoundError(f"inbox {self.config.inbox} does not exist; create it or fix `inbox`")
        while self.running:
            waiting = False
            for path in sorted(p for p in self.config.inbox.glob(self.config.pattern) if _candidate(p)):
                if not self.running:
                    return
                if not self._settled(path):
                    waiting = True  # still being written: taken on a later look
                    continue
                yield from self._read(path, checkpoints.get(path.name, {}))
            if not self.config.follow:
                if not waiting:
                    return
                time.sleep(min(self.config.settle_s, 0.2))  # a run that ends when the inbox is empty waits
                continue
            yield IDLE
            time.sleep(self.config.poll_interval_s)

    def _settled(self, path: Path) -> bool:
        """Not modified for `settle_s` (a link or other non-file is refused at once, not waited on)."""
        try:
            status = path.lstat()
        except FileNotFoundError:  # taken away meanwhile: the next look will not list it
            return False
        age = time.time() - status.st_mtime
        # a stamp well ahead of now is the writer's clock, not a write in progress: take it
        return not stat.S_ISREG(status.st_mode) or age >= self.config.settle_s or age < -self.config.settle_s

    def _read(self, path: Path, checkpoint: dict[str, Any]) -> Iterator[Item]:
        try:
            identity = _identity(path)
        except FileNotFoundError:  # taken away since it was listed: nothing to read
            return
        if checkpoint.get("file") != identity:  # a new file, even if an old one had its name
            checkpoint = {}
        last, failed = int(checkpoint.get("n", 0)), bool(checkpoint.get("failed"))
        if not checkpoint.get("complete"):
            try:
                for record in read_records(path, after=last, file_format=self.config.format,
                                           fhir_codes=self.config.fhir_codes):
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
        try:
            if _identity(source) != end.position.get("file"):
                return  # a new file took the name meanwhile: it is read on the next look, not moved unread
        except FileNotFoundError:
            return
        try:
            shutil.move(str(source), target / end.stream)
        except (shutil.SpecialFileError, OSError):
            if source.is_symlink() or not source.is_file():  # a refused link or pipe, across filesystems
                source.unlink(missing_ok=True)
            else:
                raise


def _candidate(path: Path) -> bool:
    """Anything in the inbox but folders and files still being written under a temporary name."""
    name = path.name
    folder = path.is_dir() and not path.is_symlink()
    return not (folder or name.startswith(".") or name.endswith((".part", ".tmp")))


def _identity(path: Path) -> str:
    """Tells a file from a later one of the same name: its size and modification time (of the
    entry itself: a link is never followed)."""
    status = path.lstat()
    return f"{status.st_size}:{status.st_mtime_ns}"


def _with_identity(record: SourceRecord, identity: str) -> SourceRecord:
    return SourceRecord(record.stream, {**record.position, "file": identity}, record.label, record.raw,
                        record.fields, record.error)
