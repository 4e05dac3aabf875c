"""A synthetic feed as its connectors would publish it, without a broker: for benchmarks that
measure the hub's stages on exactly the events the hub would receive."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from connectors.registry import build_connector
from connectors.sdk.runner import prepare
from connectors.sdk.sources.base import IDLE, SourceRecord
from connectors.synth.feed import AGENCIES
from mash.codec import Codec


@dataclass(frozen=True)
class Published:
    """One message as its connector would send it: to its agency's inbound topic, keyed by subject."""

    agency: str
    event_id: str
    record_id: str  # the truth's key: every revision of a record is the same child
    key: bytes
    value: bytes


def published_events(synth_dir: Path) -> dict[str, bytes]:
    """Every event the connectors would produce from the feed, by event id (dead letters left out)."""
    return {m.event_id: m.value for m in published_messages(synth_dir)}


def published_messages(synth_dir: Path) -> list[Published]:
    """Every message the connectors would send from the feed, in each agency's order, resubmissions
    included (dead letters left out)."""
    codec = Codec()
    messages: list[Published] = []
    with tempfile.TemporaryDirectory(prefix="mash-replay-") as state:
        for agency in AGENCIES:
            connector = build_connector(agency, Path(state)).use_synth(synth_dir)
            for record in _records(connector, synth_dir):
                outcome = prepare(connector, record, codec)
                if outcome.error is None and outcome.key is not None:
                    event, _ = codec.decode(outcome.value)
                    envelope = event["envelope"]
                    messages.append(Published(agency, envelope["event_id"], envelope["record_id"], outcome.key,
                                              outcome.value))
    return messages


def _records(connector: object, synth_dir: Path) -> Iterator[SourceRecord]:
    push_files = getattr(connector, "push_files", ())
    if push_files:  # an HTTP push feed: its files hold what the agency would post
        for path in push_files:
            yield from connector.sample_records(path)  # type: ignore[attr-defined]
        return
    source = connector.open_source()  # type: ignore[attr-defined]
    for item in source.items({}):
        if item is IDLE:
            break
        if isinstance(item, SourceRecord):
            yield item
    source.stop()
