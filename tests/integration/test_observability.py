"""Operators' view of a running pipeline: a real Prometheus server (Debian's) scrapes every process
through the discovery files they write, loads the alert rules, and answers queries; the
dashboard's queries name metrics the processes export; and no metric label or log line carries
a name, an identifier or free text from an event."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from mash.settings import PROJECT_ROOT, Settings
from tests.integration.conftest import env_for, mash, wait_for
from tests.integration.test_pipeline import SAMPLE_EVENTS, drained

RULES = PROJECT_ROOT / "infra" / "prometheus" / "rules.yml"
DASHBOARD = PROJECT_ROOT / "infra" / "grafana" / "dashboards" / "mash.json"
SAMPLES = PROJECT_ROOT / "connectors"
PERSONAL_KEYS = ("forename", "surname", "first_name", "last_name", "nhs_number", "postcode", "summary", "detail",
                 "upn", "person_ref", "lcs_person_id", "address")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
        return bytes(response.read())


def query(base: str, promql: str) -> list[dict[str, Any]]:
    body = json.loads(get(f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    assert body["status"] == "success", body
    return list(body["data"]["result"])


@pytest.fixture
def pipeline(provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]],
             tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The hub, a police connector that keeps watching its inbox, the triage app, and the other
    three connectors over their samples; every process's log kept for inspection."""
    hub_worker()
    env = env_for(provisioned)
    inbox = tmp_path / "police-inbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "police" / "samples" / "ppn.jsonl", inbox / "ppn.jsonl")
    config = tmp_path / "police.yaml"
    config.write_text(yaml.safe_dump({"inbox": str(inbox), "format": "jsonl", "follow": True,
                                      "poll_interval_s": 0.5}))
    app_port = free_port()
    with (tmp_path / "police.log").open("wb") as police_log, (tmp_path / "triage-app.log").open("wb") as app_log:
        running = [
            Popen([sys.executable, "-m", "mash.cli", "connector", "run", "police", "--config", str(config)],
                  env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=police_log),
            Popen([sys.executable, "-m", "mash.cli", "triage", "serve"], cwd=PROJECT_ROOT,
                  env={**env, "MASH_TRIAGE_PORT": str(app_port)}, stdout=subprocess.DEVNULL, stderr=app_log),
        ]
    try:
        for agency in ("health", "education", "social_care"):
            result = mash(provisioned, "connector", "run", agency, "--sample", check=False)
            (tmp_path / f"{agency}.log").write_text(result.stdout + result.stderr)
            assert result.returncode == 0, f"{agency} connector exited {result.returncode}: {result.stderr[-3000:]}"
        wait_for(drained(provisioned, engine, SAMPLE_EVENTS), what="every sample event to have an outcome")
        get(f"http://127.0.0.1:{app_port}/login")  # one request, so the app has request metrics
        yield {"targets": tmp_path / "metrics-targets", "app": f"127.0.0.1:{app_port}", "logs": tmp_path}
    finally:
        for proc in running:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def prometheus(pipeline: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: install Debian's prometheus package (apt-get install prometheus)")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "mash-embedded", "file_sd_configs": [
            {"files": [str(pipeline["targets"] / "*.json")], "refresh_interval": "1s"}]}],
    }))
    port = free_port()
    with (tmp_path / "prometheus.log").open("wb") as log:
        server = Popen([binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}"], stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{base}/-/ready"), timeout_s=60, what="Prometheus to be ready")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


def test_a_real_prometheus_scrapes_every_process_and_answers_queries(prometheus: str) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        found = query(prometheus, "up == 1")
        return found if {r["metric"]["job"] for r in found} >= {"mash-hub", "mash-connector", "mash-triage-app"} \
            else None

    wait_for(all_up, timeout_s=60, what="the hub, the police connector and the triage app to be scraped")

    def outcomes() -> float:
        found = query(prometheus, "sum(mash_event_outcomes_total)")
        return float(found[0]["value"][1]) if found else 0.0

    assert wait_for(lambda: outcomes() == SAMPLE_EVENTS, timeout_s=60, what="the outcomes to be counted")
    published = query(prometheus, 'sum(mash_connector_records_total{agency="police", outcome="published"})')
    assert float(published[0]["value"][1]) > 0
    open_alerts = query(prometheus, "sum(mash_open_alerts)")
    assert float(open_alerts[0]["value"][1]) >= 1
    rules = json.loads(get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {"MashFeedSilent", "MashRedAlertPastDeadline",
                                                                "MashConsumerLagGrowing", "MashProcessorDown"}


def test_every_process_says_it_is_alive_and_ready(pipeline: dict[str, Any]) -> None:
    targets = [t for entry in pipeline["targets"].glob("*.json") for g in json.loads(entry.read_text())
               for t in g["targets"]]
    assert len(targets) >= 3
    for target in targets:
        assert json.loads(get(f"http://{target}/healthz"))["status"] == "alive"
        ready = json.loads(get(f"http://{target}/readyz"))
        assert ready["status"] == "ready" and ready["kafka"] is True, (target, ready)


def test_every_metric_the_dashboard_queries_is_in_a_scrape_of_the_running_pipeline(
        pipeline: dict[str, Any]) -> None:
    exported = set()
    for text in _scrapes(pipeline):
        for line in text.splitlines():
            if line.startswith("# TYPE "):  # declared by the process, even before its first sample
                name, kind = line.split()[2:4]
                exported |= {f"{name}{s}" for s in {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                                                    "gauge": ("",)}.get(kind, ("",))}
            elif line and not line.startswith("#"):
                exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    dashboard = json.loads(DASHBOARD.read_text())
    wanted = {name for panel in dashboard["panels"] for target in panel["targets"]
              for name in re.findall(r"\bmash_[a-z_]+\b", target["expr"])}
    assert wanted and wanted - exported == set()


def test_no_metric_label_or_log_line_carries_personal_data(pipeline: dict[str, Any]) -> None:
    forbidden = _personal_values()
    assert len(forbidden) > 20  # the samples' names, numbers, postcodes and free text
    labels = {value for text in _scrapes(pipeline) for value in re.findall(r'="((?:[^"\\]|\\.)*)"', text)}
    logs = "\n".join(p.read_text(errors="replace") for p in pipeline["logs"].glob("*.log"))
    assert "mash.hub" in logs or '"process": "hub"' in logs  # the logs are really there
    leaked_labels = {v for v in labels for bad in forbidden if bad in v}
    leaked_logs = {bad for bad in forbidden if bad in logs}
    assert leaked_labels == set() and leaked_logs == set()


def _scrapes(pipeline: dict[str, Any]) -> list[str]:
    texts = []
    for entry in pipeline["targets"].glob("*.json"):
        for group in json.loads(entry.read_text()):
            texts.extend(get(f"http://{target}/metrics").decode() for target in group["targets"])
    assert len(texts) >= 3  # hub, police connector, triage app
    return texts


def _personal_values() -> set[str]:
    """Every name, identifier and free text in the shipped samples that a log or label must not carry."""
    values: set[str] = set()
    for path in (SAMPLES / "police" / "samples" / "ppn.jsonl", SAMPLES / "social_care" / "samples" /
                 "case_events.jsonl"):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the samples' deliberately broken lines
            if isinstance(record, dict):
                values |= {str(record[k]) for k in PERSONAL_KEYS if isinstance(record.get(k), str | int)
                           and len(str(record[k])) >= 4}
    return values
