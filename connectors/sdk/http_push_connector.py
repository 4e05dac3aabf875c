"""A connector whose agency system pushes records over HTTP."""

from __future__ import annotations

import json
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from connectors.sdk.contract import Connector
from connectors.sdk.formats import read_records
from connectors.sdk.sources.base import Source, SourceRecord
from connectors.sdk.sources.http_push import HttpPushConfig, HttpPushSource

PUSH_CHUNK = 500  # records per request when this connector pushes files to itself


class HttpPushConnector(Connector):
    """The shipped sample is JSON lines. Trying it out (or a synthetic feed) POSTs the records to
    the endpoint, as the agency system would, then stops."""

    config_class: ClassVar[type[HttpPushConfig]] = HttpPushConfig
    config: HttpPushConfig
    push_files: tuple[Path, ...] = ()

    def open_source(self) -> Source:
        if not self.push_files:
            return HttpPushSource(self.config)
        # A try-out needs no real token: make a one-time one unless the agency's is set.
        source = HttpPushSource(self.config, token=os.environ.get(self.config.token_env) or secrets.token_urlsafe())
        threading.Thread(target=self._push_files, args=(source,), daemon=True).start()
        return source

    def install_sample(self) -> None:
        self.push_files = (self.sample,)

    def use_synth(self, synth_dir: Path) -> Connector:
        connector = self._reconfigured(synth_dir)
        assert isinstance(connector, HttpPushConnector)
        connector.push_files = tuple(sorted((self.synth_folder(synth_dir) / "push").glob("*.jsonl")))
        return connector

    def sample_records(self, path: Path) -> Iterator[SourceRecord]:
        return read_records(path, file_format="jsonl")

    def _push_files(self, source: HttpPushSource) -> None:
        try:
            source._ready.wait(timeout=30)
            url = f"http://{self.config.host}:{source.port}{self.config.path}"
            token = source._token.decode()
            for path in self.push_files:
                records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                for start in range(0, len(records), PUSH_CHUNK):
                    print(f"pushed {path.name}: {_post(url, token, records[start:start + PUSH_CHUNK])}", flush=True)
        finally:
            source.stop()


def _post(url: str, token: str, records: list[object]) -> str:
    request = urllib.request.Request(url, data=json.dumps(records).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return f"HTTP {response.status} {response.read().decode()[:200]}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code} {error.read().decode()[:200]}"
