"""The whole hub (enrichment, sharing, triage and the triage store) over a synthetic feed, beside two
passthroughs on the same broker in the same run.

    .venv/bin/python bench/pipeline.py [--events 100000] [--workers 1] [--database-url postgresql+psycopg://...]
                                       [--secure]

Phase 1, throughput: the feed is published to the inbound topics first, then the worker(s) start;
the rate runs from the first output to the last, so start-up and group joining do not count.
  - bare:        an aiokafka consume -> produce loop (batch, send, wait for the acks, commit)
  - passthrough: the hub's own stage loop around a stage that only copies
  - hub:         `mash hub worker` with every stage, an index built from the feed itself
Phase 2, latency: a fresh hub, the feed paced at half the sustained rate for `--paced-s` seconds;
per event, the inbound message's timestamp (set by the producer as it appends) to its outcome on
`mash.outcomes.v1`, and to the moment its batch committed in the triage store (`mash.stored_ms`),
for the events that raised or joined an alert.
Peak RSS and CPU seconds are the worker processes' own (/proc), per event of the phase.
--secure: the broker, both baselines, the hub and the feed all over TLS and SCRAM-SHA-512 with the
ACLs enforced, as the bus is deployed (each hub process as the `hub` principal, the rest as `operator`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from pydantic import SecretStr

from connectors.synth.generate import generate
from connectors.synth.replay import published_messages
from mash.acl_sync import sync_acls
from mash.codec import Codec
from mash.hub_run import FeedMessage, publish, worker_env
from mash.kafka_security import OPERATOR, aiokafka_options, kafka_python_options, secured
from mash.local_kafka import client_environment, start_broker
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import ENRICHED, OUTCOMES, inbound, provision, topic_name

# The broker a benchmark starts is plaintext, as its baselines are, unless --secure (the bus itself
# defaults to SASL_SSL): set before any Settings is made, and passed on to the workers it starts.
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL" if "--secure" in sys.argv else "PLAINTEXT")

ALERTING = (b"ALERT_RAISED", b"ATTACHED_TO_ALERT")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    events: int
    seconds: float
    rss_mb: list[float]
    cpu_s: float
    broker_cpu_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1, help="hub workers in one group (each with every stage)")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--database-url", help="PostgreSQL for the hub (default: a fresh SQLite file per run)")
    parser.add_argument("--paced-s", type=float, default=60.0, help="length of the paced latency phase")
    parser.add_argument("--secure", action="store_true", help="TLS + SCRAM-SHA-512 and ACLs, as deployed")
    parser.add_argument("--worker", choices=("bare", "passthrough"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(bare_worker()) if args.worker == "bare" else passthrough_worker()
        return
    with tempfile.TemporaryDirectory(prefix="mash-bench-pipeline-") as tmp:
        work = Path(tmp)
        broker = start_broker(work / "kafka", Settings().kafka_jars_dir, secure=args.secure)
        if args.secure:  # every process finds the broker's CA and its principal's password here
            os.environ.update(client_environment(work / "kafka"))
        try:
            args.broker_pid = broker.pid
            bench(work, broker.bootstrap, args)
        finally:
            broker.stop()


def bench(work: Path, bootstrap: str, args: argparse.Namespace) -> None:
    print(f"pipeline benchmark: generating a synthetic feed of about {args.events:,} events ...", flush=True)
    generate(work / "feed", args.events, seed=3)
    feed = published_messages(work / "feed")
    distinct = len({m.event_id for m in feed})
    print(f"  {len(feed):,} messages ({distinct:,} distinct events); broker {bootstrap}; {args.workers} worker(s); "
          f"{args.partitions} partitions; database {'PostgreSQL' if args.database_url else 'SQLite'}; "
          f"{'TLS + SCRAM-SHA-512 with ACLs' if args.secure else 'plaintext'}", flush=True)
    runs = [throughput(work, bootstrap, args, name, feed) for name in ("bare", "passthrough", "hub")]
    bare, passthrough, hub = runs
    print("\nthroughput (first output to last; feed published beforehand)")
    print(f"  {'':12} {'events/s':>10} {'CPU ms/event':>13} {'broker CPU ms/event':>20} "
          f"{'peak RSS per process (MB)':>26}")
    for run in runs:
        rss = ", ".join(f"{r:,.0f}" for r in run.rss_mb)
        print(f"  {run.name:12} {run.rate:>10,.0f} {1000 * run.cpu_s / run.events:>13.3f} "
              f"{1000 * run.broker_cpu_s / run.events:>20.3f} {rss:>26}")
    print(f"  ratio hub / passthrough {hub.rate / passthrough.rate:.3f}; hub / bare {hub.rate / bare.rate:.3f}; "
          f"passthrough / bare {passthrough.rate / bare.rate:.3f}  (target: hub >= 0.25 x passthrough)")
    latency(work, bootstrap, args, feed, hub.rate / 2)


def deployment(work: Path, bootstrap: str, args: argparse.Namespace, name: str) -> Settings:
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    state = work / run
    state.mkdir()
    url = args.database_url or f"sqlite:///{state / 'mash.db'}"
    settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"{run}.", app_id=f"bench-{run}", state_dir=state,
                        database_url=SecretStr(url), topic_partitions=args.partitions)
    provision(bootstrap, settings)
    if secured(settings):
        sync_acls(bootstrap, settings)  # the hub's processes connect as the `hub` principal
    if args.database_url:
        from sqlalchemy import text

        from mash.db import make_engine
        from mash.models import Base
        engine = make_engine(url)
        Base.metadata.drop_all(engine)  # each run starts from an empty index and store
        with engine.begin() as db:
            db.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()
    from mash.db import db_upgrade

    db_upgrade(settings)  # the migration step a deployment runs before its processes
    return settings


def operator_client() -> dict[str, Any]:
    """The benchmark's own clients (publishing, watching, reading back) connect as the operator."""
    return kafka_python_options(Settings(), OPERATOR)


def messages_for(settings: Settings, feed: list) -> list[FeedMessage]:  # type: ignore[type-arg]
    return [FeedMessage(topic_name(inbound(m.agency), settings), m.key, m.value) for m in feed]


def start_workers(settings: Settings, name: str, count: int) -> list[subprocess.Popen[bytes]]:
    command = ([sys.executable, "-m", "mash.cli", "hub", "worker"] if name == "hub"
               else [sys.executable, __file__, "--worker", name])
    procs = []
    for n in range(count):
        with (settings.state_dir / f"{name}-{n}.log").open("wb") as log:
            procs.append(subprocess.Popen(command, env=worker_env(settings, MASH_LOG_FORMAT="text"), cwd=PROJECT_ROOT,
                                          stdout=log, stderr=subprocess.STDOUT))
    return procs


def throughput(work: Path, bootstrap: str, args: argparse.Namespace, name: str, feed: list) -> Run:  # type: ignore[type-arg]
    settings = deployment(work, bootstrap, args, name)
    messages = messages_for(settings, feed)
    publish(bootstrap, messages, client=operator_client())
    output = topic_name(OUTCOMES if name == "hub" else ENRICHED, settings)
    print(f"  {name}: {len(messages):,} messages published; starting {args.workers} worker(s) ...", flush=True)
    procs = start_workers(settings, name, args.workers)
    broker_before = cpu_seconds(args.broker_pid)
    try:
        first_at, first, last_at = watch(bootstrap, output, len(messages), procs, name)
        rss, cpu = tree_rss_mb(procs), sum(cpu_seconds(pid) for p in procs for pid in tree(p.pid))
        broker_cpu = cpu_seconds(args.broker_pid) - broker_before
    finally:
        stop(procs)
    share = (len(messages) - first) / len(messages)
    return Run(name, len(messages) - first, last_at - first_at, rss, cpu * share, broker_cpu * share)


def watch(bootstrap: str, topic: str, expected: int, procs: list[subprocess.Popen[bytes]],
          name: str) -> tuple[float, int, float]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, **operator_client())
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    first: tuple[float, int] | None = None
    shown, moved_at, last_count = 0.0, time.monotonic(), -1
    try:
        while True:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a {name} worker exited; see its log in the run's state folder")
            count = sum(consumer.end_offsets(partitions).values())
            now = time.monotonic()
            if count != last_count:
                last_count, moved_at = count, now
            elif now - moved_at > 120:
                raise SystemExit(f"{name}: no output for 120 s at {count:,} of {expected:,}: stalled")
            if count and first is None:
                first = (now, count)
            if count >= expected and first is not None:
                return first[0], first[1], now
            if now - shown > 10:
                print(f"    {name}: {count:,} of {expected:,}", flush=True)
                shown = now
            time.sleep(0.05)
    finally:
        consumer.close()


def latency(work: Path, bootstrap: str, args: argparse.Namespace, feed: list, rate: float) -> None:  # type: ignore[type-arg]
    settings = deployment(work, bootstrap, args, "paced")
    count = min(len(feed), int(rate * args.paced_s))
    messages = messages_for(settings, feed)[:count]
    print(f"\nlatency: {count:,} messages paced at {rate:,.0f}/s (half the sustained rate) into a running hub ...",
          flush=True)
    procs = start_workers(settings, "hub", args.workers)
    try:
        wait_joined(settings, procs)
        publish(bootstrap, messages, per_second=rate, client=operator_client())
        watch(bootstrap, topic_name(OUTCOMES, settings), count, procs, "paced hub")
        rss, cpu = tree_rss_mb(procs), sum(cpu_seconds(pid) for p in procs for pid in tree(p.pid))
    finally:
        stop(procs)
    sent = appended_at(bootstrap, settings)
    to_outcome, to_store = [], []
    for record in read_all(bootstrap, topic_name(OUTCOMES, settings)):
        headers = dict(record.headers)
        if headers.get("mash.duplicate") == b"true":
            continue
        event_id = record.key.decode()
        if event_id not in sent:
            continue
        to_outcome.append(record.timestamp - sent[event_id])
        if headers.get("mash.outcome") in ALERTING and "mash.stored_ms" in headers:
            to_store.append(int(headers["mash.stored_ms"]) - sent[event_id])
    print(f"  inbound -> outcome on the topic ({len(to_outcome):,} events): {percentiles(to_outcome)}")
    print(f"  inbound -> alert stored in the triage store ({len(to_store):,} alerting events): "
          f"{percentiles(to_store)}  (target p99 < 1,000 ms)")
    print(f"  workers: peak RSS {', '.join(f'{r:,.0f}' for r in rss)} MB; CPU {1000 * cpu / count:.3f} ms/event")


def wait_joined(settings: Settings, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until every stage group of the hub has members (so latency does not include a first join)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from mash.topics import HUB_STAGE_INPUTS, stage_group
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **operator_client())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                groups = admin.describe_groups([stage_group(s, settings) for s in HUB_STAGE_INPUTS])
            except KafkaError:  # a fresh broker's group coordinator is not up yet
                groups = {}
            if groups and all(g.get("group_state") == "Stable" and g.get("members") for g in groups.values()):
                return
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a hub worker exited while joining")
            time.sleep(0.2)
    finally:
        admin.close()


def appended_at(bootstrap: str, settings: Settings) -> dict[str, int]:
    codec = Codec()
    stamps: dict[str, int] = {}
    for agency in ("police", "health", "education", "social_care"):
        for record in read_all(bootstrap, topic_name(inbound(agency), settings)):
            event, _ = codec.decode(record.value)
            stamps.setdefault(event["envelope"]["event_id"], record.timestamp)
    return stamps


def read_all(bootstrap: str, topic: str) -> list:  # type: ignore[type-arg]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **operator_client())
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records, remaining = [], {tp for tp in partitions if end[tp]}
    while remaining:
        for tp, batch in consumer.poll(timeout_ms=1000, max_records=10_000).items():
            records.extend(batch)
            if batch and batch[-1].offset + 1 >= end[tp]:
                remaining.discard(tp)
    consumer.close()
    return records


def percentiles(values: list[int]) -> str:
    if len(values) < 2:
        return "too few to say"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49]:,.0f} ms, p95 {cuts[94]:,.0f} ms, p99 {cuts[98]:,.0f} ms, max {max(values):,.0f} ms"


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tree(pid: int) -> list[int]:
    """The process and its children (a hub worker runs a process per stage)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # ended while we looked
    return [pid, *children]


def tree_rss_mb(procs: list[subprocess.Popen[bytes]]) -> list[float]:
    """Peak RSS of every process of the workers (a stage process each, and the worker watching them)."""
    return [peak_rss_mb(pid) for p in procs for pid in tree(p.pid)]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


# -- the baselines' workers ------------------------------------------------------------------------

async def bare_worker() -> None:
    """aiokafka alone: consume a batch, produce it to the output topic, wait for the acks, commit."""
    import signal

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from mash.settings import get_settings
    settings = get_settings()
    topics = [topic_name(inbound(a), settings) for a in ("police", "health", "education", "social_care")]
    output = topic_name(ENRICHED, settings)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=settings.bootstrap_servers, group_id=settings.app_id,
                                enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=1000,
                                **aiokafka_options(settings, OPERATOR))
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=5,
                                max_batch_size=256 * 1024, **aiokafka_options(settings, OPERATOR))
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await consumer.start()
    await producer.start()
    try:
        while not stopping.is_set():
            fetched = await consumer.getmany(timeout_ms=300, max_records=1000)
            if not fetched:
                continue
            pending = [await producer.send(output, r.value, key=r.key) for records in fetched.values() for r in records]
            await asyncio.gather(*pending)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in fetched.items()})
    finally:
        await consumer.stop()
        await producer.stop()


def passthrough_worker() -> None:
    """The hub's stage loop (the same batching, acknowledgement and commit) around a copy."""
    from mash.settings import get_settings
    from services.hub.app import make_hub
    from services.messages import InMessage, OutMessage

    settings = get_settings()
    hub = make_hub(settings, settings.bootstrap_servers)

    def copy(batch: list[InMessage]) -> list[OutMessage]:
        return [OutMessage(ENRICHED, m.key, m.value) for m in batch]

    hub.add("enrichment", copy)
    asyncio.run(hub.run())


if __name__ == "__main__":
    main()
