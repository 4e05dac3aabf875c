"""A connector whose agency system drops files into a folder: most of them, to begin with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from connectors.sdk.contract import Connector
from connectors.sdk.sources.base import Source
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
