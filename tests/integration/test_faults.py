"""Faults real clusters have, against the real broker and database, counted by event id and by child.

Each run publishes a synthetic feed with several full hub workers in one group, breaks something
mid-stream, and then requires: every inbound event has exactly one outcome in the store, exactly
one first decision on the outcomes topic (a redelivery is marked as one), no child has two open
alerts, and the hub finished (a stall of 60 s without a new outcome fails the run). The triage
app's own faults are here too: decisions recorded while the broker is down reach the hub once each,
and a database outage is answered with 503 until it is over. Slow: `make test-slow` (CI runs it).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord
from pydantic import SecretStr
from sqlalchemy import Engine, select, text

from connectors.synth.generate import generate
from connectors.synth.replay import published_messages
from mash.acl_sync import sync_acls
from mash.codec import Codec
from mash.db import make_engine, session_factory
from mash.hub_run import Census, FeedMessage, Workers, census, publish, wait_until, worker_env
from mash.kafka_security import OPERATOR, kafka_python_options, secured
from mash.local_kafka import free_port, restart_broker, start_broker, start_cluster
from mash.models import AlertRecord, Base, EventOutcomeRecord, TriageDecisionRecord
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import CATALOGUE, DECISIONS, OUTCOMES, inbound, provision, topic_name
from tests.integration.conftest import owner_of, ready_engine, stop_process
from tests.support.bus import operator_client, secure_environment
from tests.support.triage_data import PASSWORD, add_users, seed

pytestmark = pytest.mark.slow
FEED_EVENTS = 3000
KILL_REPETITIONS = 10
STALL_S = 60.0


@dataclass(frozen=True)
class Feed:
    messages: list[tuple[str, bytes, bytes]]  # (agency, key, value) in each agency's order
    event_ids: list[str]
    truth: dict[str, int]  # event id -> the child it is about


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Feed:
    folder = tmp_path_factory.mktemp("feed")
    generate(folder, FEED_EVENTS, seed=14)
    published = published_messages(folder)
    lines = (folder / "truth" / "events.jsonl").read_text().splitlines()
    person_of_record = {row["record_id"]: row["person"] for row in map(json.loads, lines)}
    truth = {m.event_id: person_of_record[m.record_id] for m in published}
    return Feed([(m.agency, m.key, m.value) for m in published], sorted({m.event_id for m in published}), truth)


def deployment(bootstrap: str, database_url: str, state_dir: Path, replication_factor: int = 1,
               owner_url: str = "") -> Settings:
    """A fresh deployment on the shared broker: its own topics (6 partitions), groups and state."""
    run = uuid.uuid4().hex[:8]
    if database_url.startswith("sqlite"):
        database_url = f"sqlite:///{state_dir / 'mash.db'}"  # a database of its own per run
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"f{run}.", app_id=f"mash-fault-{run}",
                        state_dir=state_dir, database_url=SecretStr(database_url), topic_partitions=6,
                        database_owner_url=SecretStr(owner_url or owner_of(database_url)),
                        stage_retry_budget_s=60, replication_factor=replication_factor)
    provision(bootstrap, settings)
    if secured(settings):
        sync_acls(bootstrap, settings)  # the declared ACLs for this deployment's prefix and groups
    return settings


@contextmanager
def deployed(bootstrap: str, database_url: str, state_dir: Path, replication_factor: int = 1,
             owner_url: str = "") -> Iterator[tuple[Settings, Engine, Workers]]:
    """A fresh deployment, its database and its hub workers (logs in `state_dir/logs`, none started
    yet); at the end every worker is stopped and a shared PostgreSQL database emptied."""
    settings = deployment(bootstrap, database_url, state_dir, replication_factor, owner_url)
    engine = ready_engine(settings)
    workers = Workers(settings, state_dir / "logs")
    try:
        yield settings, engine, workers
    finally:
        workers.stop_all()
        if not database_url.startswith("sqlite"):
            clean(settings)
        engine.dispose()


def send(settings: Settings, feed: Feed) -> None:
    """Publish the feed onto the deployment's inbound topics, as the operator."""
    publish(settings.bootstrap_servers, feed_messages(settings, feed), client=kafka_python_options(settings, OPERATOR))


def feed_messages(settings: Settings, feed: Feed) -> Iterator[FeedMessage]:
    for agency, key, value in feed.messages:
        yield FeedMessage(topic_name(inbound(agency), settings), key, value)


def topic_records(settings: Settings, name: str) -> Iterator[ConsumerRecord]:
    """Every record on one of the deployment's topics, from the beginning to the end it has now."""
    consumer = KafkaConsumer(**operator_client(settings), enable_auto_commit=False)
    topic = topic_name(name, settings)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    remaining = {tp for tp in partitions if end[tp]}
    try:
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                yield from records
                if records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def outcome_messages(settings: Settings) -> tuple[Counter[str], set[str]]:
    """Per event, the outcome messages not marked as a repeat (first decisions); and every event
    with any outcome message (a crash between storing and sending leaves only a repeat on the topic)."""
    firsts: Counter[str] = Counter()
    seen: set[str] = set()
    for record in topic_records(settings, OUTCOMES):
        seen.add(record.key.decode())
        if dict(record.headers).get("mash.duplicate") != b"true":
            firsts[record.key.decode()] += 1
    return firsts, seen


def reached(engine: Engine, feed: Feed, outcomes: float) -> Callable[[], bool]:
    return lambda: census(engine, feed.event_ids).with_outcome >= outcomes


def ride_out(workers: Workers, seconds: float) -> None:
    """Wait out an outage, failing at once if a worker gives up during it."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        assert not workers.exited(), f"a worker gave up during the outage; logs in {workers.logs}"
        time.sleep(0.5)


@dataclass(frozen=True)
class TriageApp:
    """`mash triage serve`, a process of its own on a free loopback port."""

    url: str
    process: subprocess.Popen[bytes]

    @contextmanager
    def logged_in(self, username: str) -> Iterator[httpx2.Client]:
        """A client with the user's session and CSRF token, as a script on the JSON API has."""
        with httpx2.Client(base_url=self.url, timeout=60, trust_env=False) as client:
            response = client.post("/api/login", json={"username": username, "password": PASSWORD})
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
            yield client


@contextmanager
def triage_app(settings: Settings, logs: Path) -> Iterator[TriageApp]:
    """The triage app as its operators run it (its outbox sender in the background), until the block ends."""
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "triage-app.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mash.cli", "triage", "serve"], cwd=PROJECT_ROOT,
                                env=worker_env(settings, MASH_TRIAGE_PORT=str(port)), stdout=log,
                                stderr=subprocess.STDOUT)
    app = TriageApp(f"http://127.0.0.1:{port}", proc)
    try:
        assert wait_until(lambda: proc.poll() is not None or answers(f"{app.url}/healthz"), timeout_s=60) \
            and proc.poll() is None, f"the triage app did not start; log in {logs}"
        yield app
    finally:
        stop_process(proc)


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


def clean(settings: Settings) -> None:
    """Empty the shared PostgreSQL database, as its owner (the processes' role may not drop tables)."""
    owner = make_engine(settings.owner_url())
    Base.metadata.drop_all(owner)
    with owner.begin() as db:
        db.execute(text("DROP TABLE IF EXISTS alembic_version"))
    owner.dispose()


@dataclass
class RunResult:
    finished: bool
    counts: Census
    repeated_first_decisions: int
    without_outcome_message: int

    @property
    def clean(self) -> bool:
        return (self.finished and self.counts.complete and self.counts.children_with_two_open_alerts == 0
                and self.repeated_first_decisions == 0 and self.without_outcome_message == 0)


def finish(settings: Settings, engine: Engine, feed: Feed, workers: Workers) -> RunResult:
    def outcomes() -> int:
        return census(engine, feed.event_ids).with_outcome

    finished = wait_until(lambda: outcomes() == len(feed.event_ids), timeout_s=600, stalled_after_s=STALL_S,
                          progress=outcomes)
    counts = census(engine, feed.event_ids)
    # The triage stage commits a batch to the store, then sends its outcomes: the last batch's
    # messages may still be on their way when the store is complete.
    wait_until(lambda: set(feed.event_ids) <= outcome_messages(settings)[1], timeout_s=60)
    firsts, seen = outcome_messages(settings)
    return RunResult(finished, counts, sum(1 for n in firsts.values() if n > 1), len(set(feed.event_ids) - seen))


@pytest.mark.timeout(1800)
def test_killing_one_of_three_workers_mid_stream_loses_nothing_duplicates_nothing_and_never_stalls(
    bootstrap: str, database_url: str, tmp_path: Path, feed: Feed
) -> None:
    repetitions = KILL_REPETITIONS if database_url.startswith("sqlite") else 3
    results: list[RunResult] = []
    chooser = random.Random(14)
    for n in range(repetitions):
        settings = deployment(bootstrap, database_url, tmp_path / f"run-{n}")
        engine = ready_engine(settings)
        workers = Workers(settings, tmp_path / f"run-{n}" / "logs")
        try:
            for _ in range(3):
                workers.start()
            send(settings, feed)
            half = len(feed.event_ids) * chooser.uniform(0.3, 0.6)
            assert wait_until(reached(engine, feed, half), timeout_s=300), \
                f"run {n}: the workers never got half way; logs in {workers.logs}"
            workers.kill(chooser.choice(workers.running))
            workers.start()  # the supervisor restarts it
            results.append(finish(settings, engine, feed, workers))
        finally:
            workers.stop_all()
            if not database_url.startswith("sqlite"):
                clean(settings)
            engine.dispose()
    finished = sum(r.clean for r in results)
    print(f"\nkill -9 one of three workers mid-stream: {len(results)} runs, {finished} finished clean")
    for n, r in enumerate(results):
        print(f"  run {n}: {r.counts.with_outcome}/{r.counts.events} events with an outcome, "
              f"{r.repeated_first_decisions} repeated first decisions, "
              f"{r.without_outcome_message} without an outcome message, "
              f"{r.counts.children_with_two_open_alerts} children with two open alerts, finished={r.finished}")
    assert finished == len(results), [r for r in results if not r.clean]


@dataclass(frozen=True)
class ChildResult:
    """What one run made of one child (by the feed's truth)."""

    grouped: frozenset[frozenset[str]]  # the persons its events were filed under, each as all its events
    held: frozenset[str]  # the records its open alerts hold, withdrawn records aside
    rag: str | None  # the most urgent open rating, None when not alerted
    review: bool  # an open alert kept a rating higher than the records now support, for a person to review


def child_results(engine: Engine, truth: dict[str, int]) -> dict[int, ChildResult]:
    with engine.connect() as db:
        outcomes = db.execute(select(EventOutcomeRecord.event_id, EventOutcomeRecord.person_id,
                                     EventOutcomeRecord.kind, EventOutcomeRecord.record_id)).all()
        alerts = db.execute(select(AlertRecord.rag, AlertRecord.event_ids, AlertRecord.review)
                            .where(AlertRecord.status == "OPEN")).all()
    record = {o.event_id: o.record_id or o.event_id for o in outcomes}
    withdrawn = {record[o.event_id] for o in outcomes if o.kind == "WITHDRAWAL"}
    persons: dict[str, set[str]] = {}
    for o in outcomes:
        persons.setdefault(o.person_id, set()).add(o.event_id)
    groups: dict[int, set[frozenset[str]]] = {}
    for events in map(frozenset, persons.values()):
        for child in {truth[e] for e in events}:
            groups.setdefault(child, set()).add(events)
    held: dict[int, set[str]] = {}
    rag: dict[int, str] = {}
    review: set[int] = set()
    for alert in alerts:
        for child in {truth[e] for e in alert.event_ids}:
            held.setdefault(child, set()).update(record[e] for e in alert.event_ids
                                                 if truth[e] == child and record[e] not in withdrawn)
            if child not in rag or RANK[alert.rag] < RANK[rag[child]]:
                rag[child] = alert.rag
            if alert.review:
                review.add(child)
    return {child: ChildResult(frozenset(groups[child]), frozenset(held.get(child, ())), rag.get(child),
                               child in review) for child in groups}


RANK = {"RED": 0, "AMBER": 1, "GREEN": 2}


@dataclass(frozen=True)
class Agreement:
    """How far two runs of one feed agree, child by child."""

    children: int
    grouped_differently: int  # the person index filed its events differently (linkage depends on order)
    alerted_differently: int  # grouped alike, alerted in one run only (with no review asked)
    held_differently: int  # grouped alike, alerted in both, the alerts hold other live records
    rated_differently: int  # grouped alike, same records held, another rating with no review asked in either
    rated_differently_for_review: int  # another rating, or an alert in one run only, kept for a person to review

    @property
    def converged(self) -> bool:
        return not (self.alerted_differently or self.held_differently or self.rated_differently)


def agreement(first: dict[int, ChildResult], other: dict[int, ChildResult]) -> Agreement:
    alike = [c for c in first if c in other and first[c].grouped == other[c].grouped]
    alerted = [c for c in alike if (first[c].rag is None) != (other[c].rag is None)]
    both = [c for c in alike if first[c].rag is not None and other[c].rag is not None]
    held = [c for c in both if first[c].held != other[c].held]
    rated = [c for c in both if first[c].held == other[c].held and first[c].rag != other[c].rag]
    for_review = [c for c in (*alerted, *rated) if first[c].review or other[c].review]
    return Agreement(len(first), len(first) - len(alike), len(set(alerted) - set(for_review)), len(held),
                     len(set(rated) - set(for_review)), len(for_review))


@pytest.mark.timeout(1200)
def test_one_two_or_three_workers_and_a_rebalance_mid_stream_account_for_every_event_and_agree(
    bootstrap: str, database_url: str, tmp_path: Path, feed: Feed
) -> None:
    """The same feed through 1 worker twice, 2 workers, and 3 with one joining and one leaving
    mid-stream: every run accounts for every event once, with one open alert per child. Kafka
    orders each partition, not the agencies' topics against each other, so each run delivers a
    child's events in another order. For every child whose events the person index filed alike
    (linkage still depends on order, and that is printed), the runs agree: alerted or not, the
    live records its alert holds, and its rating, unless a run kept a higher rating than the
    records now support and asks a person to review it (the hub never lowers a rating itself)."""
    plans = ("one", "one-again", "two", "three-joining-and-leaving")
    results: dict[str, dict[int, ChildResult]] = {}
    for plan in plans:
        settings = deployment(bootstrap, database_url, tmp_path / plan)
        engine = ready_engine(settings)
        workers = Workers(settings, tmp_path / plan / "logs")
        try:
            workers.start()
            if plan.startswith(("two", "three")):
                workers.start()
            send(settings, feed)
            if plan.startswith("three"):
                assert wait_until(reached(engine, feed, len(feed.event_ids) / 3), timeout_s=300)
                workers.start()  # joins mid-stream
                assert wait_until(reached(engine, feed, len(feed.event_ids) / 2), timeout_s=300)
                workers.stop(workers.running[0])  # leaves mid-stream
            result = finish(settings, engine, feed, workers)
            assert result.clean, (plan, result)
            results[plan] = child_results(engine, feed.truth)
        finally:
            workers.stop_all()
            if not database_url.startswith("sqlite"):
                clean(settings)
            engine.dispose()
    first = results["one"]
    print(f"\none worker: {sum(r.rag is not None for r in first.values())} of {len(first)} children alerted")
    agreements = {plan: agreement(first, results[plan]) for plan in plans[1:]}
    for plan, agreed in agreements.items():
        print(f"{plan} against one: {agreed}")
    assert all(a.converged for a in agreements.values()), agreements


@pytest.mark.timeout(900)
def test_the_broker_stopped_and_restarted_mid_stream_loses_nothing_and_duplicates_nothing(
    database_url: str, tmp_path: Path, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker of its own, stopped for 15 s while two workers are mid-stream, then started again on
    the same data and port: the workers retry (their guard) and carry on by themselves."""
    broker = start_broker(tmp_path / "kafka", Settings().kafka_jars_dir, secure=True)
    secure_environment(monkeypatch, tmp_path / "kafka")
    try:
        settings = deployment(broker.bootstrap, database_url, tmp_path / "run")
        engine = ready_engine(settings)
        workers = Workers(settings, tmp_path / "run" / "logs")
        try:
            workers.start()
            workers.start()
            send(settings, feed)
            assert wait_until(reached(engine, feed, len(feed.event_ids) * 0.3), timeout_s=300)
            broker.stop()
            ride_out(workers, 15)
            broker = restart_broker(broker, Settings().kafka_jars_dir)
            result = finish(settings, engine, feed, workers)
            print(f"\nbroker stopped for 15 s mid-stream: {result}")
            assert result.clean, result
            assert not workers.exited()
        finally:
            workers.stop_all()
            if not database_url.startswith("sqlite"):
                clean(settings)
            engine.dispose()
    finally:
        broker.stop()


OUTAGE_S = 30.0
SENT_LATER = "it will reach the hub when Kafka is reachable"


def decide(client: httpx2.Client, alert_id: str) -> str:
    """Claim the alert and record a decision on the revision read; what the app answered."""
    assert client.post(f"/api/alerts/{alert_id}/claim").status_code == 200
    revision = client.get(f"/api/alerts/{alert_id}").json()["revision"]
    response = client.post(f"/api/alerts/{alert_id}/decision", json={
        "outcome": "EARLY_HELP", "rationale": "Family agrees to early help.", "alert_revision": revision})
    assert response.status_code == 200, response.text
    return str(response.json()["result"])


def unsent_decisions(engine: Engine) -> set[str]:
    with engine.connect() as db:
        return set(db.scalars(select(TriageDecisionRecord.decision_id).where(
            TriageDecisionRecord.published_at.is_(None))))


def open_alerts(engine: Engine, alert_ids: list[str]) -> set[str]:
    with engine.connect() as db:
        return set(db.scalars(select(AlertRecord.alert_id).where(AlertRecord.alert_id.in_(alert_ids),
                                                                 AlertRecord.status != "CLOSED")))


@pytest.mark.timeout(900)
def test_decisions_recorded_while_the_broker_is_down_for_30_s_reach_the_hub_once_each_and_close_their_alerts(
    database_url: str, tmp_path: Path, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broker of its own, with the hub and the triage app running. A first decision goes out at once
    (the app's producer is connected); then the broker stops for 30 s, and the decisions recorded
    meanwhile are accepted and kept in the app's outbox; the broker comes back on its data and port,
    and the app sends each of them once, by itself, and the hub closes their alerts."""
    jars = Settings().kafka_jars_dir
    broker = start_broker(tmp_path / "kafka", jars, secure=True)
    secure_environment(monkeypatch, tmp_path / "kafka")
    try:
        with deployed(broker.bootstrap, database_url, tmp_path / "run") as (settings, engine, workers):
            workers.start()
            send(settings, feed)
            assert wait_until(reached(engine, feed, len(feed.event_ids)), timeout_s=600), \
                f"the hub did not finish the feed; logs in {workers.logs}"
            add_users(session_factory(engine))
            with triage_app(settings, workers.logs) as app, app.logged_in("alice") as alice:
                alert_ids = [a["alert_id"] for a in alice.get("/api/alerts").json()["alerts"][:4]]
                assert len(alert_ids) == 4
                assert SENT_LATER not in decide(alice, alert_ids[0])  # sent at once
                broker.stop()
                stopped, slowest = time.monotonic(), 0.0
                for alert_id in alert_ids[1:]:
                    started = time.monotonic()
                    assert SENT_LATER in decide(alice, alert_id)
                    slowest = max(slowest, time.monotonic() - started)
                assert slowest < 5.0, f"recording a decision took {slowest:.1f} s while the broker was down"
                held = unsent_decisions(engine)
                assert len(held) == len(alert_ids) - 1, held
                readiness = httpx2.get(f"{app.url}/readyz", trust_env=False)
                assert readiness.status_code == 503 and readiness.json()["kafka"] is False, readiness.text
                ride_out(workers, OUTAGE_S - (time.monotonic() - stopped))
                assert app.process.poll() is None, "the triage app exited during the outage"
                broker = restart_broker(broker, jars)
                assert wait_until(lambda: not open_alerts(engine, alert_ids), timeout_s=180), \
                    f"alerts still open: {open_alerts(engine, alert_ids)}; unsent: {unsent_decisions(engine)}"
                assert not unsent_decisions(engine)
            with engine.connect() as db:
                decided = set(db.scalars(select(TriageDecisionRecord.decision_id)))
            on_topic = Counter(Codec().decode(r.value)[0]["decision_id"] for r in topic_records(settings, DECISIONS))
            print(f"\nbroker stopped for {OUTAGE_S:.0f} s with the triage app running: {len(held)} decisions held "
                  f"(the slowest recorded in {slowest:.2f} s); {len(alert_ids)} decided, {sum(on_topic.values())} "
                  f"decision messages for {len(on_topic)} decisions, {len(open_alerts(engine, alert_ids))} still open")
            assert on_topic == Counter(decided), on_topic
            assert not workers.exited()
    finally:
        broker.stop()


def partitions_of(bootstrap: str, topics: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every partition of `topics` (leader, replicas, in-sync replicas) and each topic's
    min.insync.replicas as the brokers apply it (the topic's own or the cluster's default)."""
    admin = KafkaAdminClient(**operator_client(bootstrap), client_id="mash-fault-test")
    try:
        partitions = [p for topic in admin.describe_topics(topics) for p in topic["partitions"]]
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t, ["min.insync.replicas"])
                                          for t in topics], config_filter="all")["topic"]
    finally:
        admin.close()
    return partitions, {t: configs[t]["min.insync.replicas"]["value"] for t in topics}


@pytest.mark.timeout(900)
def test_one_of_three_brokers_killed_mid_stream_loses_nothing_duplicates_nothing_and_never_stalls(
    database_url: str, tmp_path: Path, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster of its own: three brokers, every topic (the hub's and the group offsets) on all three
    and written once two have it. The broker leading the most partitions is killed (kill -9) while two
    workers are mid-stream and stays dead: the hub's producer (acks=all, idempotent) and its consumer
    groups carry on with the other two, by themselves."""
    cluster = start_cluster(tmp_path / "kafka", Settings().kafka_jars_dir, brokers=3, min_insync_replicas=2,
                            secure=True)
    secure_environment(monkeypatch, tmp_path / "kafka")
    try:
        with deployed(cluster.bootstrap, database_url, tmp_path / "run", replication_factor=3) as (
                settings, engine, workers):
            workers.start()
            workers.start()
            send(settings, feed)
            assert wait_until(reached(engine, feed, len(feed.event_ids) * 0.3), timeout_s=300), \
                f"the workers never got a third of the way; logs in {workers.logs}"
            topics = [topic_name(spec.name, settings) for spec in CATALOGUE] + ["__consumer_offsets"]
            partitions, min_insync = partitions_of(cluster.bootstrap, topics)
            assert {len(p["replica_nodes"]) for p in partitions} == {3}
            assert set(min_insync.values()) == {"2"}, min_insync
            leaders = Counter(p["leader_id"] for p in partitions)
            node_id, led = leaders.most_common(1)[0]
            before = census(engine, feed.event_ids).with_outcome
            cluster.brokers[node_id - 1].kill()
            result = finish(settings, engine, feed, workers)
            print(f"\nbroker {node_id} of 3 (leading {led} of {len(partitions)} partitions) killed with "
                  f"{before}/{len(feed.event_ids)} events done: {result}")
            assert result.clean, result
            assert not workers.exited(), f"a worker gave up; logs in {workers.logs}"
    finally:
        cluster.stop()


POSTGRES_CLUSTER = PROJECT_ROOT / "infra" / "postgres" / "test-cluster.sh"


@contextmanager
def own_postgres() -> Iterator[tuple[Path, str, str]]:
    """A PostgreSQL cluster of its own on loopback: its directory (for `postgres`), the processes'
    (least-privileged) URL and the schema owner's."""
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        pytest.fail("PostgreSQL's server is missing: apt-get install postgresql (bash .ci/run does)")
    home = Path(tempfile.mkdtemp(prefix="mash-fault-pg-"))  # not under pytest's: the postgres user must enter
    home.chmod(0o755)
    cluster = home / "pg"
    try:
        started = subprocess.run(["bash", str(POSTGRES_CLUSTER), "start", str(cluster)], capture_output=True,
                                 text=True, check=True)
        urls = dict(line.split("=", 1) for line in started.stdout.strip().splitlines())
        yield cluster, urls["MASH_TEST_POSTGRES_URL"], urls["MASH_TEST_POSTGRES_OWNER_URL"]
    finally:
        subprocess.run(["bash", str(POSTGRES_CLUSTER), "stop", str(cluster)], check=False)
        shutil.rmtree(home, ignore_errors=True)


def postgres(action: str, cluster: Path) -> None:
    """pause (stop the server) or resume (start it again on its port and data)."""
    subprocess.run(["bash", str(POSTGRES_CLUSTER), action, str(cluster)], check=True)


@pytest.mark.timeout(900)
def test_the_database_stopped_for_30_s_mid_stream_loses_nothing_and_the_workers_carry_on(
    bootstrap: str, tmp_path: Path, feed: Feed
) -> None:
    """PostgreSQL of its own, stopped for 30 s while two workers are mid-stream, then started again:
    every stage retries its batch (the guard's budget is longer than the outage) and carries on."""
    with own_postgres() as (cluster, url, owner), \
            deployed(bootstrap, url, tmp_path / "run", owner_url=owner) as (settings, engine, workers):
        workers.start()
        workers.start()
        send(settings, feed)
        assert wait_until(reached(engine, feed, len(feed.event_ids) * 0.3), timeout_s=300)
        postgres("pause", cluster)
        ride_out(workers, OUTAGE_S)
        postgres("resume", cluster)
        result = finish(settings, engine, feed, workers)
        print(f"\nPostgreSQL stopped for 30 s mid-stream: {result}")
        assert result.clean, result
        assert not workers.exited()


DATABASE_DOWN = "database is unavailable"


@pytest.mark.timeout(600)
def test_the_triage_app_answers_503_while_its_database_is_down_for_30_s_and_recovers_by_itself(
    bootstrap: str, tmp_path: Path
) -> None:
    """The triage app on PostgreSQL of its own, which stops for 30 s: its pages and API calls answer at
    once with 503 saying the database is unavailable (no stack trace, no hang) for the whole outage,
    and the same process serves them again once the database is back, without a restart."""
    with own_postgres() as (cluster, url, owner):
        settings = deployment(bootstrap, url, tmp_path / "run", owner_url=owner)
        engine = ready_engine(settings)
        add_users(session_factory(engine))
        ruby = seed(session_factory(engine))["ruby"]["alert_id"]
        engine.dispose()
        with triage_app(settings, tmp_path / "run" / "logs") as app, app.logged_in("alice") as alice:
            calls: dict[str, Callable[[], httpx2.Response]] = {
                "queue page": lambda: alice.get("/"),
                "alert page": lambda: alice.get(f"/alerts/{ruby}"),
                "queue API": lambda: alice.get("/api/alerts"),
                "alert API": lambda: alice.get(f"/api/alerts/{ruby}"),
                "claim API": lambda: alice.post(f"/api/alerts/{ruby}/claim"),
                "log-in API": lambda: httpx2.post(f"{app.url}/api/login", trust_env=False,
                                                  json={"username": "pat", "password": PASSWORD}),
            }

            def statuses() -> set[int]:
                return {call().status_code for call in calls.values()}

            assert statuses() == {200}
            postgres("pause", cluster)
            down, answered, slowest = time.monotonic(), 0, 0.0
            while time.monotonic() - down < OUTAGE_S:
                for name, call in calls.items():
                    started = time.monotonic()
                    response = call()
                    slowest = max(slowest, time.monotonic() - started)
                    assert response.status_code == 503, (name, response.status_code, response.text[:300])
                    assert DATABASE_DOWN in response.text and "Traceback" not in response.text, (name, response.text)
                    kind = "application/json" if "API" in name else "text/html"
                    assert response.headers["content-type"].startswith(kind), (name, response.headers)
                    answered += 1
                time.sleep(0.5)  # a user retrying, not a load test: the machine is shared
            readiness = httpx2.get(f"{app.url}/readyz", trust_env=False)
            assert readiness.status_code == 503 and readiness.json()["database"] is False, readiness.text
            postgres("resume", cluster)
            back = time.monotonic()
            assert wait_until(lambda: statuses() == {200}, timeout_s=60), "the app did not recover by itself"
            recovered_in = time.monotonic() - back
            assert app.process.poll() is None
        print(f"\nPostgreSQL stopped for {OUTAGE_S:.0f} s under the triage app: {answered} requests answered 503 "
              f"(slowest {slowest:.2f} s); every call answered 200 again {recovered_in:.1f} s after it was back")
        assert slowest < 5.0, f"a request took {slowest:.1f} s while the database was down"
