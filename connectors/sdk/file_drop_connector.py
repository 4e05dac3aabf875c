"""A connector whose agency system drops files into a folder: most of them, to begin with."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from connectors.sdk.contract import Connector
from connectors.sdk.formats import read_records
from connectors.sdk.sources.base import Source, SourceRecord
from connectors.sdk.sources.file_drop import FileDropConfig, FileDropSource


class FileDropConnector(Connector):
    config_class: ClassVar[type[FileDropConfig]] = FileDropConfig
    file_format: ClassVar[str]
    config: FileDropConfig

    @classmethod
    def defaults(cls, state_dir: Path) -> dict[str, Any]:
        return {"inbox": state_dir / "connectors" / cls.name / "inbox", "format": cls.file_format}

    def open_source(self) -> Source:
        return FileDropSource(self.config)

    def install_sample(self) -> None:
        self.config.inbox.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.sample, self.config.inbox / self.sample.name)

    def use_synth(self, synth_dir: Path) -> Connector:
        return self._reconfigured(synth_dir, inbox=self.synth_folder(synth_dir) / "inbox")

    def sample_records(self, path: Path) -> Iterator[SourceRecord]:
        return read_records(path, file_format=self.config.format, fhir_codes=self.config.fhir_codes)
