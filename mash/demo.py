"""`mash demo`: the whole pipeline on the embedded stack, over the shipped samples.

Starts a fresh Kafka broker, provisions the topics, starts the hub worker, runs the four
connectors, waits until every inbound event is accounted for, and prints the summary. The
connectors and the hub run as `mash` subprocesses, as they would in production, so the kernel
imports neither.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from pydantic import SecretStr
from sqlalchemy import Engine, select

from mash.acl_sync import sync_acls
from mash.alert_truth import alert_truth
from mash.db import db_upgrade, engine_for
from mash.demo_enquiry import add_agency_users, run_enquiry
from mash.kafka_security import secured
from mash.local_kafka import BrokerProcess, start_broker
from mash.models import AlertRecord
from mash.pipeline_counts import PipelineCounts, count
from mash.settings import Settings
from mash.topics import AGENCIES, provision


def run_demo(base: Settings) -> int:
    demo_dir = base.state_dir / "demo"
    if demo_dir.exists():
        shutil.rmtree(demo_dir)  # each demo starts from nothing, so its figures are its own
    demo_dir.mkdir(parents=True)
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(signum, _raise_interrupt)
    children: list[subprocess.Popen[bytes]] = []
    broker: BrokerProcess | None = None
    try:
        step("starting Apache Kafka (KRaft, loopback)")
        started = time.monotonic()
        broker = start_broker(demo_dir / "kafka", base.kafka_jars_dir, secure=secured(base))
        security = ("TLS and SASL/SCRAM-SHA-512, one principal per service" if broker.security
                    else "PLAINTEXT: no encryption, no authentication (MASH_KAFKA_SECURITY_PROTOCOL)")
        step(f"broker ready at {broker.bootstrap} in {time.monotonic() - started:.1f} s ({security})")
        settings = base.model_copy(update={
            "bootstrap_servers": broker.bootstrap,
            "database_url": SecretStr(f"sqlite:///{demo_dir / 'mash.db'}"),
            "state_dir": demo_dir,
        })
        env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": broker.bootstrap,
               "MASH_DATABASE_URL": settings.sqlalchemy_url(), "MASH_STATE_DIR": str(demo_dir)}
        before, schema, _ = db_upgrade(settings)  # the migration step, before any process starts
        step(f"database schema {schema} ({'migrated from ' + (before or 'empty') if before != schema else 'current'})")
        engine = engine_for(settings)
        created = provision(broker.bootstrap, settings)
        step(f"provisioned {len(created)} topics")
        if broker.security:
            acls = sync_acls(broker.bootstrap, settings)
            step(f"Kafka ACLs applied: {len(acls.created)} grants; each service may use only its own topics "
                 "(`mash kafka acls`)")
        children.append(_spawn(["hub", "worker"], env, demo_dir / "hub.log"))
        step(f"hub worker started (log: {demo_dir / 'hub.log'})")
        app_url, users = _start_triage_app(env, demo_dir, children)
        agency_passwords = add_agency_users(env)
        reports = _run_connectors(["--sample"], "sample", env, demo_dir)
        counts = _wait_until_drained(broker.bootstrap, settings, engine, children[0])
        ok = print_summary(reports, counts, "the shipped samples")
        if base.demo_synth_events:
            synth_dir = demo_dir / "synth"
            step(f"generating a synthetic feed of {base.demo_synth_events:,} events (mash synth)")
            _spawn(["synth", "--events", str(base.demo_synth_events), "--out", str(synth_dir)], env,
                   demo_dir / "synth.log").wait(timeout=600)
            synth_reports = _run_connectors(["--synth", str(synth_dir)], "synth", env, demo_dir)
            counts = _wait_until_drained(broker.bootstrap, settings, engine, children[0])
            totals = {a: {k: reports[a][k] + synth_reports[a][k] for k in ("read", "produced", "dead_lettered")}
                      for a in AGENCIES}
            ok = print_summary(totals, counts, "the samples and the synthetic feed") and ok
            print_truth(synth_dir, engine)
        ok = app_check(app_url, users, engine) and ok
        ok = run_enquiry(app_url, users, agency_passwords, env, demo_dir) and ok
        ok = audit_check(env) and ok
        print_operations(demo_dir)
        print_users(app_url, users)
        if base.demo_exit:
            return 0 if ok else 1
        step("pipeline running; feed it with `mash connector run <agency> --config F` or `--synth DIR` "
             f"(MASH_BOOTSTRAP_SERVERS={broker.bootstrap}). Ctrl-C stops everything.")
        while children[0].poll() is None:
            time.sleep(1)
        step("the hub worker exited; see its log")
        return 1
    except KeyboardInterrupt:
        step("stopping")
        return 0
    finally:
        for child in children:
            _stop(child)
        if broker is not None:
            broker.stop()
        step("stopped every process the demo started")


DEMO_USERS = (  # username, app role, sharing role: one of each kind of triage user
    ("worker", "triage_worker", "mash_social_worker"),
    ("police", "triage_worker", "mash_police_officer"),
    ("health", "triage_worker", "mash_health_practitioner"),
    ("manager", "triage_manager", "triage_manager"),
    ("auditor", "auditor", None),
)


def _start_triage_app(env: dict[str, str], demo_dir: Path,
                      children: list[subprocess.Popen[bytes]]) -> tuple[str, dict[str, str]]:
    """Demo users with passwords made for this run, and the triage app on a free loopback port."""
    users = {}
    for username, role, sharing in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        args = [sys.executable, "-m", "mash.cli", "user", "add", username, "--role", role, "--password-stdin",
                "--name", f"Demo {username}", *(["--sharing-role", sharing] if sharing else [])]
        subprocess.run(args, env=env, input=password + "\n", text=True, check=True, capture_output=True, timeout=60)
        users[username] = password
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app_env = {**env, "MASH_TRIAGE_HOST": "127.0.0.1", "MASH_TRIAGE_PORT": str(port),
               # the demo's information requests fall due in 36 seconds, to show one going overdue
               "MASH_TRIAGE_REQUEST_PROFILE": str(Path(__file__).resolve().parents[1] / "policies" / "triage"
                                                  / "demo-requests-36s.yaml")}
    children.append(_spawn(["triage", "serve"], app_env, demo_dir / "triage-app.log"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _answers(f"{url}/readyz"):
        if time.monotonic() > deadline or children[-1].poll() is not None:
            raise SystemExit(f"demo: the triage app did not start; see {demo_dir / 'triage-app.log'}")
        time.sleep(0.3)
    print_users(url, users)
    return url, users


def print_operations(state_dir: Path) -> None:
    """Where each running process serves /metrics, /healthz and /readyz (its discovery entry)."""
    print("\noperators: /metrics, /healthz, /readyz of each running process (Prometheus: "
          "infra/prometheus/embedded.yml finds them):")
    for entry in sorted((state_dir / "metrics-targets").glob("*.json")):
        for group in json.loads(entry.read_text()):
            for target in group["targets"]:
                print(f"  {group['labels']['process']:22} http://{target}/metrics")


def print_users(url: str, users: dict[str, str]) -> None:
    print(f"\ntriage app: {url}/  (API: {url}/api/docs); demo users, passwords made for this run only:")
    for (username, role, sharing), password in zip(DEMO_USERS, users.values(), strict=True):
        print(f"  {username:8} {password}   {role}{f', sees as {sharing}' if sharing else ''}")
    print(flush=True)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def app_check(url: str, users: dict[str, str], engine: Engine) -> bool:
    """The triage app shows a manager every open alert the hub raised."""
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        login = urllib.request.Request(f"{url}/api/login", method="POST", headers={"Content-Type": "application/json"},
                                       data=json.dumps({"username": "manager", "password": users["manager"]}).encode())
        opener.open(login, timeout=10).read()
        shown = json.loads(opener.open(f"{url}/api/alerts", timeout=30).read())["total"]
    except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
        print(f"\ntriage app:\n  [FAILED] the queue could not be read ({exc})")
        return False
    with engine.connect() as db:
        stored = len(db.execute(select(AlertRecord.alert_id).where(AlertRecord.status == "OPEN")).all())
    ok = bool(shown == stored)
    print(f"\ntriage app:\n  [{'ok' if ok else 'FAILED'}] the queue shows the manager {shown} open alerts; "
          f"the store holds {stored}")
    return ok


def step(message: str) -> None:
    print(f"demo: {message}", flush=True)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "mash.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _run_connectors(args: list[str], phase: str, env: dict[str, str], demo_dir: Path) -> dict[str, dict[str, int]]:
    """Run the four connectors at once over one feed; their reports once they all finish."""
    running = {a: _spawn(["connector", "run", a, *args, "--report-json", str(demo_dir / f"{phase}-{a}.json")],
                         env, demo_dir / f"connector-{phase}-{a}.log") for a in AGENCIES}
    reports = {}
    for agency, proc in running.items():
        if proc.wait(timeout=600) != 0:
            raise SystemExit(f"demo: the {agency} connector failed; see {demo_dir}/connector-{phase}-{agency}.log")
        reports[agency] = json.loads((demo_dir / f"{phase}-{agency}.json").read_text())
        step(f"connector {agency}: read {reports[agency]['read']}, produced "
             f"{reports[agency]['produced']}, dead-lettered {reports[agency]['dead_lettered']}")
    return reports


def _wait_until_drained(bootstrap: str, settings: Settings, engine: object,
                        hub: subprocess.Popen[bytes]) -> PipelineCounts:
    deadline = time.monotonic() + settings.demo_timeout_s
    shown = None
    while True:
        counts = count(bootstrap, settings, engine)  # type: ignore[arg-type]
        progress = (sum(counts.outcomes.values()), counts.inbound_events, counts.hub_lag)
        if progress != shown:  # a line per change, readable in a terminal and in a CI log
            step("waiting for the hub: {}/{} events decided, consumer lag {}".format(*progress))
            shown = progress
        if counts.accounted:
            return counts
        if hub.poll() is not None:
            raise SystemExit(f"demo: the hub worker exited ({hub.returncode}); see "
                             f"{settings.state_dir / 'hub.log'}")
        if time.monotonic() > deadline:
            step(f"gave up waiting after {settings.demo_timeout_s:.0f} s (MASH_DEMO_TIMEOUT_S)")
            return counts
        time.sleep(1.0)


def print_summary(reports: dict[str, dict[str, int]], counts: PipelineCounts, what: str) -> bool:
    """Print the figures and the conservation check; True when everything is accounted for."""
    print(f"\n=== MASH demo summary: {what} ===")
    print(f"{'agency':12} {'read':>6} {'produced':>9} {'dead-lettered':>14} {'on topic':>9}")
    for agency, r in reports.items():
        print(f"{agency:12} {r['read']:>6} {r['produced']:>9} {r['dead_lettered']:>14} "
              f"{counts.inbound_messages[agency]:>9}")
    read = sum(r["read"] for r in reports.values())
    produced = sum(r["produced"] for r in reports.values())
    connector_dlq = sum(r["dead_lettered"] for r in reports.values())
    messages = sum(counts.inbound_messages.values())
    outcomes = sum(counts.outcomes.values())
    print(f"\ninbound: {messages} messages, {counts.inbound_events} distinct events "
          f"({messages - counts.inbound_events - counts.inbound_undecodable} resubmissions recognised "
          "as duplicates)")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.outcomes.items())))
    print(f"records live: {counts.kinds['NEW']} new, {counts.kinds['REVISION']} revisions applied, "
          f"{counts.kinds['WITHDRAWAL']} withdrawals, {counts.outcomes['STALE_REVISION']} stale revisions "
          "recorded and ignored (each of these is one outcome above)")
    print(f"alerts raised: {sum(counts.alerts.values())} ("
          + ", ".join(f"{k} {v}" for k, v in sorted(counts.alerts.items())) + ")")
    print(f"dead letters: {sum(counts.dead_letters.values())}")
    for reason, n in sorted(counts.dead_letter_reasons.items()):
        print(f"  {n} x {reason}")
    checks = [
        (read == produced + connector_dlq, f"source records {read} = produced {produced} + "
         f"dead-lettered by connectors {connector_dlq}"),
        (produced == messages, f"produced {produced} = on inbound topics {messages}"),
        (connector_dlq == sum(v for k, v in counts.dead_letters.items() if k.startswith("connector:")),
         "connector dead letters are all on the dead-letter topic"),
        (counts.accounted, f"distinct inbound events {counts.inbound_events} = outcomes {outcomes}; "
         f"undecodable inbound {counts.inbound_undecodable} = hub dead letters "
         f"{counts.dead_letters['hub:enrichment']}; hub lag {counts.hub_lag}"),
        (sum(counts.alerts.values()) > 0, "at least one alert raised"),
    ]
    print("\nconservation check:")
    for ok, text in checks:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
    return all(ok for ok, _ in checks)


def audit_check(env: dict[str, str]) -> bool:
    """Every sharing decision the run made is in an intact hash chain (`mash audit verify`)."""
    result = subprocess.run([sys.executable, "-m", "mash.cli", "audit", "verify"], env=env, capture_output=True,
                            text=True, timeout=600)
    print("\nsharing decisions (audit trail):")
    for line in (result.stdout + result.stderr).strip().splitlines():
        print(f"  {line}")
    print(f"  [{'ok' if result.returncode == 0 else 'FAILED'}] mash audit verify")
    return result.returncode == 0


def print_truth(synth_dir: Path, engine: Engine) -> None:
    """How the alerts compare with the synthetic feed's ground truth (information, not a check)."""
    truth = alert_truth(synth_dir, engine)
    print(f"\nground truth of the synthetic feed: {truth}")
    print(f"ratings against the truth (docs/rag-ground-truth.md): {truth.ratings}")
    print("\n".join(f"  {line}" for line in truth.ratings.table().splitlines()))
