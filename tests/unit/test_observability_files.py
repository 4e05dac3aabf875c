"""The alert rules, the dashboard and the runbook agree with the metrics the code declares."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import mash.metrics  # noqa: F401 - declares the catalogue
from mash.settings import PROJECT_ROOT

INFRA = PROJECT_ROOT / "infra"
RULES = INFRA / "prometheus" / "rules.yml"
DASHBOARD = INFRA / "grafana" / "dashboards" / "mash.json"
NAME = re.compile(r"\b(mash_[a-z_]+|up)\b")


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def declared() -> set[str]:
    """Every series name the catalogue can produce (a labelled metric has no samples until used)."""
    return {f"{f.name}{suffix}" for f in REGISTRY.collect() if f.name.startswith("mash_")
            for suffix in SUFFIXES.get(f.type, ("",))} | {"up"}


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


def test_every_metric_the_dashboard_queries_is_declared() -> None:
    missing = {n for e in dashboard_exprs() for n in NAME.findall(e)} - declared()
    assert missing == set()


def test_every_metric_an_alert_rule_reads_is_declared_and_every_alert_has_a_runbook_section() -> None:
    runbook = (PROJECT_ROOT / "docs" / "runbook.md").read_text().lower()
    for alert, expr in rule_exprs():
        assert {n for n in NAME.findall(expr)} <= declared(), alert
        anchor = alert.lower() if alert != "MashHubAbsent" else "mashprocessordown"
        assert f"## {anchor}" in runbook, alert


def test_metric_names_follow_prometheus_conventions() -> None:
    for family in REGISTRY.collect():
        if not family.name.startswith("mash_"):
            continue
        assert family.type in SUFFIXES, family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


@pytest.mark.parametrize("args", [
    ["check", "rules", str(RULES)],
    ["check", "config", str(INFRA / "prometheus" / "prometheus.yml")],
    ["check", "config", str(INFRA / "prometheus" / "embedded.yml")],
    ["test", "rules", str(INFRA / "prometheus" / "rules_test.yml")],
])
def test_promtool_accepts_the_prometheus_files(args: list[str]) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (apt-get install prometheus)")
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120,
                            cwd=Path(args[-1]).parent)
    assert result.returncode == 0, result.stdout + result.stderr
