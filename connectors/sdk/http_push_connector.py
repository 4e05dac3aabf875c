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


class HttpPushConnector(Connector):
    """The shipped sample is JSON lines; trying it out POSTs them to the endpoint, then stops."""

    config_class: ClassVar[type[HttpPushConfig]] = HttpPushConfig
    config: HttpPushConfig
    _sample_requested = False

    def open_source(self) -> Source:
        if not self._sample_requested:
            return HttpPushSource(self.config)
        # A try-out needs no real token: make a one-time one unless the agency's is set.
        source = HttpPushSource(self.config, token=_env_or_none(self.config.token_env) or secrets.token_urlsafe())
        threading.Thread(target=self._push_sample, args=(source,), daemon=True).start()
        return source

    def install_sample(self) -> None:
        self._sample_requested = True

    def sample_records(self, path: Path) -> Iterator[SourceRecord]:
        return read_records(path, file_format="jsonl")

    def _push_sample(self, source: HttpPushSource) -> None:
        try:
            source._ready.wait(timeout=30)
            body = json.dumps([json.loads(line) for line in self.sample.read_text().splitlines() if line.strip()])
            request = urllib.request.Request(
                f"http://{self.config.host}:{source.port}{self.config.path}", data=body.encode(), method="POST",
                headers={"Authorization": f"Bearer {source._token.decode()}",
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    print(f"sample pushed: HTTP {response.status} {response.read().decode()}", flush=True)
            except urllib.error.HTTPError as error:
                print(f"sample pushed: HTTP {error.code} {error.read().decode()}", flush=True)
        finally:
            source.stop()


def _env_or_none(name: str) -> str | None:
    return os.environ.get(name) or None
