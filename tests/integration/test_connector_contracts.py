"""The four reference connectors pass the contract kit on the real broker, fed by `mash synth`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from connectors.sdk.contract import Connector
from connectors.synth.generate import generate
from connectors.testkit import ConnectorContract

SYNTH_EVENTS = 10_000


@pytest.fixture(scope="session")
def synth_feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "feed"
    generate(out, SYNTH_EVENTS, seed=42)
    return out


class SynthFed(ConnectorContract):
    feed_size = 500

    @pytest.fixture(autouse=True)
    def _feed(self, synth_feed: Path) -> None:
        self.synth = synth_feed


class TestPoliceContract(SynthFed):
    connector_name = "police"

    def install_feed(self, connector: Connector, size: int, tmp_path: Path) -> Any:
        inbox: Path = connector.config.inbox  # type: ignore[attr-defined]
        shutil.copytree(self.synth / "police" / "inbox", inbox, dirs_exist_ok=True)


class TestHealthContract(SynthFed):
    connector_name = "health"

    def install_feed(self, connector: Connector, size: int, tmp_path: Path) -> Any:
        inbox: Path = connector.config.inbox  # type: ignore[attr-defined]
        inbox.mkdir(parents=True, exist_ok=True)
        for bundle in sorted((self.synth / "health" / "inbox").iterdir())[:4]:
            shutil.copy(bundle, inbox / bundle.name)


class TestEducationContract(SynthFed):
    connector_name = "education"

    def install_feed(self, connector: Connector, size: int, tmp_path: Path) -> Any:
        url: str = connector.config.url.get_secret_value()  # type: ignore[attr-defined]
        target = Path(url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.synth / "education" / "school.db", target)


class TestSocialCareContract(SynthFed):
    connector_name = "social_care"

    def install_feed(self, connector: Connector, size: int, tmp_path: Path) -> Any:
        return [json.loads(line) for path in sorted((self.synth / "social_care" / "push").iterdir())
                for line in path.read_text().splitlines()]
