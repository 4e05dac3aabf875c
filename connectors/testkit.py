"""The connector contract test kit: point it at your connector; it proves the contract on a real broker.

    from connectors.testkit import ConnectorContract

    class TestMyAgencyContract(ConnectorContract):
        connector_name = "my_agency"

        def install_feed(self, connector, size, tmp_path):
            ...  # put about `size` valid records where the connector's source reads them

Your tests need a `bootstrap` fixture giving a Kafka broker's host:port (the project's own
`tests/integration/conftest.py` starts one with `mash.local_kafka.start_broker`). The kit proves:

- every record of the shipped sample ends on the inbound topic or the dead-letter topic, and the
  counts match the run's report;
- every event validates against the connector's schema and is keyed by the agency's subject id;
- bad records in the sample are dead-lettered with the original bytes, the connector, the source
  position, the error class and message;
- its mapping document (docs/mappings/<name>.md, or `mapping_doc`) names the standard the source
  follows and every field of the sample's records and events; a FHIR sample is valid FHIR R4;
- a run killed without warning (SIGKILL) and started again loses nothing and duplicates no event:
  counted by event_id, the topic holds exactly the feed's events. An HTTP push endpoint is killed
  while it is producing a request's records, before its 202: only that request's events may be on
  the topic twice (the agency system resends what got no 202).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from kafka import KafkaConsumer, TopicPartition

from connectors.registry import build_connector, connector_class
from connectors.sdk import fhir
from connectors.sdk.contract import Connector
from connectors.sdk.http_push_connector import HttpPushConnector
from connectors.sdk.offsets import OffsetStore
from connectors.sdk.runner import Runner, RunReport, make_producer, prepare_all
from connectors.sdk.sources.base import SourceRecord
from mash.acl_sync import revoke_acls, sync_acls
from mash.codec import Codec
from mash.kafka_security import OPERATOR, kafka_python_options, secured
from mash.local_kafka import free_port
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import DEADLETTER, provision, topic_name

PUSH_TOKEN = "contract-kit-token"


class Kit:
    """One test's world: its own topics, state folder and connector configuration."""

    def __init__(self, name: str, bootstrap: str, tmp_path: Path, overrides: dict[str, Any]) -> None:
        run = uuid.uuid4().hex[:8]  # its own topics and groups: nothing shared with a deployment on the broker
        self.settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"k{run}.", app_id=f"mash-kit-{run}",
                                 state_dir=tmp_path / "state")
        self.settings.state_dir.mkdir(parents=True)
        provision(bootstrap, self.settings)
        if secured(self.settings):  # on a secured bus the connector writes as its own principal
            sync_acls(bootstrap, self.settings)
        self.config_file = tmp_path / f"{name}.yaml"
        defaults = connector_class(name).defaults(self.settings.state_dir)
        config = {**defaults, **overrides}
        self.config_file.write_text(yaml.safe_dump(json.loads(json.dumps(config, default=str))))
        self.name = name
        self.codec = Codec()

    def connector(self, **overrides: Any) -> Connector:
        return build_connector(self.name, self.settings.state_dir, self.config_file, overrides)

    def run(self, connector: Connector) -> RunReport:
        offsets = OffsetStore(f"sqlite:///{self.settings.state_dir / 'connectors.db'}", connector.name)
        producer = make_producer(self.settings.bootstrap_servers,
                                 kafka_python_options(self.settings, connector.principal))
        try:
            return Runner(connector, producer, offsets, self.settings).run(connector.open_source())
        finally:
            producer.close()
            offsets.close()

    def messages(self, topic: str) -> list[Any]:
        consumer = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers, enable_auto_commit=False,
                                 **kafka_python_options(self.settings, OPERATOR))
        name = topic_name(topic, self.settings)
        partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = sum(consumer.end_offsets(partitions).values())
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while len(records) < end and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        consumer.close()
        return records

    def subprocess(self, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": self.settings.bootstrap_servers,
               "MASH_TOPIC_PREFIX": self.settings.topic_prefix, "MASH_APP_ID": self.settings.app_id,
               "MASH_STATE_DIR": str(self.settings.state_dir)}
        env.setdefault("MASH_SOCIAL_CARE_PUSH_TOKEN", PUSH_TOKEN)
        with log.open("ab") as out:
            return subprocess.Popen([sys.executable, "-m", "mash.cli", "connector", "run", self.name,
                                     "--config", str(self.config_file)], env=env, cwd=PROJECT_ROOT,
                                    stdout=out, stderr=subprocess.STDOUT)


class ConnectorContract(ABC):
    connector_name: ClassVar[str]
    feed_size: ClassVar[int] = 3000
    mapping_doc: ClassVar[Path | None] = None  # default: docs/mappings/<connector_name>.md

    @abstractmethod
    def install_feed(self, connector: Connector, size: int, tmp_path: Path) -> Any:
        """Put about `size` valid records where `connector`'s source reads them.

        For an HTTP push connector, return the records (dicts) to push instead."""

    def config_overrides(self, tmp_path: Path) -> dict[str, Any]:
        """Configuration for the test's connector on top of its defaults."""
        return {}

    @pytest.fixture
    def kit(self, bootstrap: str, tmp_path: Path) -> Iterator[Kit]:
        overrides = self.config_overrides(tmp_path)
        if issubclass(connector_class(self.connector_name), HttpPushConnector):
            overrides = {"port": free_port(), "token_env": "MASH_SOCIAL_CARE_PUSH_TOKEN", **overrides}
        kit = Kit(self.connector_name, bootstrap, tmp_path, overrides)
        yield kit
        if secured(kit.settings):
            revoke_acls(bootstrap, kit.settings)  # the kit's topics are throwaway; so are their grants

    # --- the contract ---------------------------------------------------------------------------

    def test_sample_events_validate_are_keyed_and_counted(self, kit: Kit) -> None:
        connector = kit.connector()
        connector.install_sample()
        report = kit.run(connector)
        events = kit.messages(connector.topic)
        assert report.read == report.produced + report.dead_lettered
        assert len(events) == report.produced > 0
        for message in events:
            record, writer = kit.codec.decode(message.value, connector.schema)
            assert writer.name == connector.schema
            assert message.key == record["envelope"]["subject"]["local_id"].encode()
            assert record["envelope"]["source_agency"] == connector.agency
            assert record["envelope"]["event_type"] == connector.event_type

    def test_sample_bad_records_are_dead_lettered_with_reasons(self, kit: Kit) -> None:
        connector = kit.connector()
        expected = [r for r in connector.sample_records(connector.sample) if _fails(connector, r, kit.codec)]
        assert expected, "the shipped sample should include records that fail, to show the dead-letter path"
        connector.install_sample()
        report = kit.run(connector)
        letters = kit.messages(DEADLETTER)
        assert len(letters) == report.dead_lettered >= len(expected)
        for message in letters:
            headers = dict(message.headers)
            record, _ = kit.codec.decode(message.value, "uk.mash.hub.DeadLetter")
            assert headers["mash.dlq.stage"] == f"connector:{connector.name}".encode()
            assert headers["mash.dlq.error_class"] and headers["mash.dlq.error_message"]
            assert record["source_position"] and record["original"]

    def test_the_mapping_is_documented_field_by_field_against_a_sample_in_its_standard(self, tmp_path: Path) -> None:
        """The mapping document names every field the sample's events carry and every field its
        records hold; a FHIR sample is valid FHIR R4, resource by resource."""
        connector = build_connector(self.connector_name, tmp_path)
        doc_path = self.mapping_doc or PROJECT_ROOT / "docs" / "mappings" / f"{self.connector_name}.md"
        assert doc_path.is_file(), f"no mapping document at {doc_path}: document the mapping field by field"
        gaps = mapping_gaps(connector, doc_path.read_text(encoding="utf-8"))
        assert gaps == [], f"{doc_path} does not match the sample: " + "; ".join(gaps)

    def test_a_killed_run_restarts_without_loss_or_duplicate_events(self, kit: Kit, tmp_path: Path) -> None:
        connector = kit.connector()
        feed = self.install_feed(connector, self.feed_size, tmp_path)
        unconfirmed: set[str] | None = None
        if isinstance(connector, HttpPushConnector):
            records = [_pushed(r) for r in feed]
            interrupted = self._push_with_a_kill(kit, connector, feed, tmp_path)
            unconfirmed = {i for i in (_event_id(connector, _pushed(r), kit.codec) for r in interrupted) if i}
            in_flight = len(interrupted)
        else:
            records = list(_offline(connector))
            in_flight = self._run_with_a_kill(kit, tmp_path)
        expected = [i for i in (_event_id(connector, r, kit.codec) for r in records) if i is not None]
        ids = [kit.codec.decode(m.value)[0]["envelope"]["event_id"] for m in kit.messages(connector.topic)]
        assert len(set(expected)) >= self.feed_size // 2
        assert set(ids) == set(expected)  # nothing lost, nothing foreign
        resent = len(ids) - len(expected)  # the feed's own resubmissions are in `expected` too
        assert 0 <= resent <= in_flight  # at most what was unconfirmed when the run was killed
        if unconfirmed is not None:
            twice = set(Counter(ids) - Counter(expected))
            assert twice, "nothing was resent: the kill did not interrupt a request being produced"
            assert twice <= unconfirmed, f"events of confirmed requests were resent: {sorted(twice - unconfirmed)}"

    # --- how the kill happens -------------------------------------------------------------------

    def _run_with_a_kill(self, kit: Kit, tmp_path: Path) -> int:
        """Kill a run part-way, run again; returns how many records could have been in flight."""
        kit.config_file.write_text(kit.config_file.read_text() + "max_rate: 500\nbatch_size: 100\n")
        first = kit.subprocess(tmp_path / "run.log")
        _wait(lambda: len(kit.messages(kit.connector().topic)) >= 300, "the first run to send some events")
        first.send_signal(signal.SIGKILL)
        first.wait()
        sent_before = len(kit.messages(kit.connector().topic))
        second = kit.subprocess(tmp_path / "run.log")
        assert second.wait(timeout=300) == 0, (tmp_path / "run.log").read_text()[-2000:]
        assert sent_before < len(kit.messages(kit.connector().topic)), "the kill came after the run had finished"
        return 100

    def _push_with_a_kill(self, kit: Kit, connector: HttpPushConnector, feed: list[dict[str, Any]],
                          tmp_path: Path) -> list[dict[str, Any]]:
        """Kill the endpoint while it is producing a request's records, before it answers; the client
        resends that request and the rest. Returns the interrupted request's records."""
        url = f"http://{connector.config.host}:{connector.config.port}{connector.config.path}"
        health = url.replace(connector.config.path, "/healthz")
        chunks = [feed[i:i + 100] for i in range(0, len(feed), 100)]
        config = kit.config_file.read_text()
        kit.config_file.write_text(config + "max_rate: 50\n")  # a request of 100 takes the endpoint 2 s
        server = kit.subprocess(tmp_path / "push.log")
        _wait(lambda: _post(health, None) == 200, "the endpoint")
        kit.config_file.write_text(config)  # restarted, it runs at full speed
        half = len(chunks) // 2
        for chunk in chunks[:half]:
            assert _post(url, chunk) == 202
        topic = _EndOffsets(kit, connector.topic)
        before = topic.total()
        answers: list[int] = []
        posting = threading.Thread(target=lambda: answers.append(_post(url, chunks[half])))
        posting.start()
        _wait(lambda: topic.total() > before, "the request's first records on the topic", poll_s=0.02)
        server.send_signal(signal.SIGKILL)
        server.wait()
        posting.join(timeout=60)
        part = topic.total() - before
        topic.close()
        assert answers == [0], f"the kill came after the request was answered ({answers})"
        assert 0 < part < len(chunks[half]), f"{part} of the request's records were on the topic at the kill"
        server = kit.subprocess(tmp_path / "push.log")
        _wait(lambda: _post(health, None) == 200, "the restarted endpoint")
        for chunk in chunks[half:]:  # the agency system resends whatever got no 202
            assert _post(url, chunk) == 202
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        return chunks[half]


class _EndOffsets:
    """How many records a topic holds, asked of one consumer again and again."""

    def __init__(self, kit: Kit, topic: str) -> None:
        self._consumer = KafkaConsumer(bootstrap_servers=kit.settings.bootstrap_servers,
                                       **kafka_python_options(kit.settings, OPERATOR))
        name = topic_name(topic, kit.settings)
        self._partitions = [TopicPartition(name, p) for p in self._consumer.partitions_for_topic(name) or ()]

    def total(self) -> int:
        return sum(self._consumer.end_offsets(self._partitions).values())

    def close(self) -> None:
        self._consumer.close()


def mapping_gaps(connector: Connector, doc: str) -> list[str]:
    """What a mapping document lacks against the connector's sample (empty: it documents it all).

    The document's `## Field by field` table names each event field in its first column (full
    dotted names in backticks) and the source's own field names in the others.
    """
    if not any(line.startswith("Source standard:") for line in doc.splitlines()):
        return ["no 'Source standard:' line naming the standard the source follows"]
    rows = [line.split("|") for line in doc.splitlines() if line.startswith("|")]
    event_fields = {t for row in rows if len(row) > 1 for t in re.findall(r"`([^`]+)`", row[1])}
    mentioned = {t for row in rows for t in re.findall(r"`([^`]+)`", "|".join(row[2:]))}
    codec, emitted, held, problems = Codec(), set(), set(), []
    fhir_sample = getattr(getattr(connector, "config", None), "format", None) == "fhir"
    for outcome in prepare_all(connector, connector.sample_records(connector.sample), codec):
        if outcome.error is None:
            event, _ = codec.decode(outcome.value)
            emitted |= {f"subject.{k}" for k in event["envelope"]["subject"]}
            emitted |= {f"payload.{k}" for k in event["payload"]}
    if fhir_sample:
        for entry in json.loads(connector.sample.read_text(encoding="utf-8")).get("entry", []):
            problem = fhir.invalid(entry["resource"])
            if problem:
                problems.append(f"the sample is not valid FHIR: {problem}")
    else:
        held = {k for record in connector.sample_records(connector.sample) if record.fields for k in record.fields}
    missing = sorted(emitted - event_fields)
    unnamed = sorted(held - mentioned)
    return ([f"event fields not in the table's first column: {missing}"] if missing else []) + (
        [f"source fields of the sample the table does not name: {unnamed}"] if unnamed else []) + problems


def _pushed(record: dict[str, Any]) -> SourceRecord:
    return SourceRecord("feed", {}, "feed", b"", record)


def _fails(connector: Connector, record: SourceRecord, codec: Codec) -> bool:
    return _event_id(connector, record, codec) is None


def _event_id(connector: Connector, record: SourceRecord, codec: Codec) -> str | None:
    from connectors.sdk.runner import prepare

    outcome = prepare(connector, record, codec)
    return None if outcome.error else str(codec.decode(outcome.value)[0]["envelope"]["event_id"])


def _offline(connector: Connector) -> Iterator[SourceRecord]:
    """Read the installed feed the way the source will, without sending or checkpointing."""
    return (item for item in connector.open_source().items({}) if isinstance(item, SourceRecord))


def _post(url: str, records: list[dict[str, Any]] | None) -> int:
    data = json.dumps(records).encode() if records is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                     headers={"Authorization": f"Bearer {PUSH_TOKEN}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0


def _wait(condition: Any, what: str, timeout_s: float = 120.0, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out waiting for {what}")
