"""The triage queue under a full load: the queue page and its API with `--alerts` open alerts
(10,000 by default), measured through HTTP on loopback against `mash triage serve` in its own process.

The store holds the alerts, each child's shared events (two each) and a manager who sees every
alert. A client sends `--requests` sequential requests per endpoint and prints p50/p95/p99 latency
and requests/s; the baseline is /healthz on the same server (the framework's and the network's
share), so what is left is the queue's own work. Target: queue page and API < 300 ms at p95.

    .venv/bin/python bench/triage_queue.py [--alerts 10000] [--requests 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mash.db import make_engine, session_factory, upgrade
from services.triage_app.accounts import create_user
from services.triage_store.store import TriageStore

# The app this benchmark starts has no broker to reach (the outbox waits): plaintext, so that it does not
# look for the secured embedded broker's credentials (the bus itself defaults to SASL_SSL).
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")

PASSWORD = "benchmark-password-123"
RAGS = ("RED", "AMBER", "GREEN")
AGENCIES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
ROLES = ("mash_social_worker", "mash_police_officer", "mash_health_practitioner", "triage_manager")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mash-bench-queue-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'mash.db'}"
        started = time.perf_counter()
        alert_ids = fill(url, args.alerts)
        print(f"stored {args.alerts:,} open alerts and {2 * args.alerts:,} timeline events in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        server, base = serve(url, Path(tmp))
        try:
            measure(base, alert_ids, args.requests, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def fill(url: str, alerts: int) -> list[str]:
    engine = make_engine(url)
    upgrade(engine)  # as `mash db upgrade` would: the app never migrates a server database
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    rng = random.Random(5)
    with sessions.begin() as session:
        create_user(session, "manager", "Manager", "triage_manager", "triage_manager", PASSWORD, now)
    ids = []
    for start in range(0, alerts, 1000):
        batch_alerts, batch_events = [], []
        for _ in range(start, min(alerts, start + 1000)):
            person = str(uuid.uuid4())
            events = [_event(person, rng, now) for _ in range(2)]
            rag = rng.choice(RAGS)
            opened = now - timedelta(minutes=rng.randrange(1, 3000))
            due = opened + timedelta(hours={"RED": 2, "AMBER": 6, "GREEN": 24}[rag])
            batch_alerts.append({
                "alert_id": str(uuid.uuid4()), "person_id": person, "revision": 1, "status": "OPEN", "rag": rag,
                "reasons": ["two or more agencies raised concerns about this child within 7 days (+50)"],
                "agencies": sorted({e["source_agency"] for e in events}), "event_ids": [e["event_id"] for e in events],
                "opened_at": _ms(opened), "updated_at": _ms(opened), "score": 60,
                "indicators": ["two-agencies-within-7-days"], "scoring_version": "0" * 64, "profile": "bench",
                "clock_started_at": _ms(opened), "at_risk_at": _ms(opened + (due - opened) * 0.75),
                "due_at": _ms(due)})
            batch_events.extend(events)
        TriageStore(sessions).apply(batch_alerts, [], batch_events)
        ids.extend(a["alert_id"] for a in batch_alerts)
    engine.dispose()
    return ids


def _event(person: str, rng: random.Random, now: datetime) -> dict[str, Any]:
    occurred = now - timedelta(hours=rng.randrange(1, 150))
    fields = ["subject.given_name", "subject.family_name", "subject.date_of_birth", "payload.summary"]
    return {"event_id": str(uuid.uuid4()), "person_id": person, "event_type": "education.concern",
            "source_agency": rng.choice(AGENCIES), "occurred_at": _ms(occurred), "received_at": _ms(occurred),
            "sensitivity": "STANDARD", "consent": "GIVEN", "policy_version": "0" * 64, "audit_ref": "p0:1",
            "values": json.dumps({"subject": {"given_name": f"Child{rng.randrange(10**6)}", "family_name": "Bench",
                                              "date_of_birth": "2015-01-01"},
                                  "payload": {"summary": "x" * 200}}),
            "views": [{"role": r, "outcome": "SHARE_FIELDS", "fields": fields} for r in ROLES]}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def serve(url: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MASH_DATABASE_URL": url, "MASH_TRIAGE_PORT": str(port), "MASH_STATE_DIR": str(tmp),
           "MASH_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # no decisions are made, so nothing is ever sent
    server = subprocess.Popen([sys.executable, "-m", "mash.cli", "triage", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
            return server, base
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the triage app did not start") from None
            time.sleep(0.2)


def measure(base: str, alert_ids: list[str], requests: int, pid: int) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    login = urllib.request.Request(f"{base}/api/login", method="POST", headers={"Content-Type": "application/json"},
                                   data=json.dumps({"username": "manager", "password": PASSWORD}).encode())
    opener.open(login).read()
    rng = random.Random(9)
    targets = {
        "baseline GET /healthz": lambda: "/healthz",
        "GET / (queue page)": lambda: "/",
        "GET /api/alerts (queue API)": lambda: "/api/alerts",
        "GET /alerts/{id} (alert page)": lambda: f"/alerts/{rng.choice(alert_ids)}",
    }
    print(f"{'endpoint':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    results = {}
    for name, path in targets.items():
        for _ in range(10):  # warm caches and connections
            opener.open(base + path()).read()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            body = opener.open(base + path()).read()
            times.append(time.perf_counter() - started)
            assert body
        times.sort()
        p50, p95, p99 = (times[int(q * (len(times) - 1))] * 1000 for q in (0.5, 0.95, 0.99))
        results[name] = p95
        print(f"{name:34} {p50:8.1f} {p95:8.1f} {p99:8.1f} {len(times) / sum(times):8.0f}", flush=True)
    rss = _rss_mb(pid)
    baseline = results["baseline GET /healthz"]
    print(f"server RSS {rss:.0f} MB; p95 over the baseline: " + ", ".join(
        f"{name.split(' (')[0]} x{p95 / baseline:.1f}" for name, p95 in results.items() if "baseline" not in name))
    queue = [v for k, v in results.items() if "queue" in k]
    print(f"queue p95 {max(queue):.1f} ms (worst of page and API; mean {statistics.mean(queue):.1f} ms): "
          f"{'within' if max(queue) < 300 else 'OVER'} the 300 ms target")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
