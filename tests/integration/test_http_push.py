"""The social care push endpoint: answers only once records are safe, refuses bad tokens."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from connectors.social_care.connector import SocialCareConnector
from mash.local_kafka import free_port
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import DEADLETTER, inbound, topic_name
from tests.integration.conftest import env_for, wait_for
from tests.support.bus import operator_client

TOKEN = "test-token-7c1d"


@pytest.fixture
def endpoint(provisioned: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "social_care.yaml"
    config.write_text(f"token_env: MASH_SOCIAL_CARE_PUSH_TOKEN\nport: {port}\nmax_body_bytes: 200000\n")
    env = {**env_for(provisioned), "MASH_SOCIAL_CARE_PUSH_TOKEN": TOKEN}
    with (tmp_path / "push.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mash.cli", "connector", "run", "social_care",
                                 "--config", str(config)], env=env, cwd=PROJECT_ROOT, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: status(f"{url}/healthz", None, method="GET")[0] == 200, what="the endpoint to listen")
    yield f"{url}/v1/records"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def status(url: str, body: bytes | None, token: str | None = TOKEN, method: str = "POST") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def count(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(**operator_client(settings))
    name = topic_name(topic, settings)
    partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or ()]
    total = sum(consumer.end_offsets(partitions).values())
    consumer.close()
    return total


def sample() -> list[dict[str, Any]]:
    """The sample's five good records (its last two are meant to fail)."""
    return [json.loads(line) for line in SocialCareConnector.sample.read_text().splitlines()][:5]


def test_bad_or_missing_token_is_refused_and_nothing_is_produced(endpoint: str, provisioned: Settings) -> None:
    body = json.dumps(sample()).encode()
    assert status(endpoint, body, token=None)[0] == 401
    assert status(endpoint, body, token="wrong")[0] == 401
    assert status(endpoint, body, token=TOKEN + "x")[0] == 401
    assert count(provisioned, inbound("social_care")) == 0
    assert count(provisioned, DEADLETTER) == 0


def test_accepted_means_on_the_topic(endpoint: str, provisioned: Settings) -> None:
    code, answer = status(endpoint, json.dumps(sample()).encode())
    assert (code, answer) == (202, {"accepted": 5})
    assert count(provisioned, inbound("social_care")) == 5


def test_bad_records_are_named_in_the_answer_and_dead_lettered(endpoint: str, provisioned: Settings) -> None:
    good, bad = sample()[0], {**sample()[1], "kind": "SECRET_KIND"}
    code, answer = status(endpoint, json.dumps([good, bad]).encode())
    assert code == 422 and answer["accepted"] == 1
    assert "kind" in answer["dead_lettered"][0]["error"]
    assert count(provisioned, inbound("social_care")) == 1
    assert count(provisioned, DEADLETTER) == 1


def test_a_body_that_is_not_json_is_dead_lettered_whole(endpoint: str, provisioned: Settings) -> None:
    code, answer = status(endpoint, b"<xml>not json</xml>")
    assert code == 400 and answer["dead_lettered"] is True
    wait_for(lambda: count(provisioned, DEADLETTER) == 1, what="the dead letter")


def test_an_oversized_body_is_refused_and_nothing_is_produced(endpoint: str, provisioned: Settings) -> None:
    code, _ = status(endpoint, json.dumps([{**sample()[0], "detail": "x" * 300_000}]).encode())
    assert code == 413
    assert status(endpoint, json.dumps(sample()[:1]).encode())[0] == 202  # a request after it is produced
    assert count(provisioned, inbound("social_care")) == 1 and count(provisioned, DEADLETTER) == 0


def test_too_many_records_in_one_request_are_refused_whole_and_nothing_is_produced(
        endpoint: str, provisioned: Settings) -> None:
    """Bytes were capped, records were not: 200 kB of `{}` is 50,000 dead letters from one request."""
    code, answer = status(endpoint, json.dumps([{}] * 1001).encode())
    assert code == 413 and "1001 records in one request; the limit is 1000" in answer["error"]
    assert count(provisioned, inbound("social_care")) == 0 and count(provisioned, DEADLETTER) == 0


def test_json_nested_too_deeply_is_one_dead_letter_and_the_endpoint_goes_on(
        endpoint: str, provisioned: Settings) -> None:
    code, answer = status(endpoint, b"[" * 50_000 + b"]" * 50_000)
    assert code == 400 and "nested too deeply" in answer["error"]
    assert status(endpoint, json.dumps(sample()[:1]).encode())[0] == 202
