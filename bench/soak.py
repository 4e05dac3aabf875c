"""A bounded soak: the whole hub under a steady feed for `--minutes`, sampling memory and lag.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 700] [--workers 1] [--database-url ...]

A synthetic feed of rate x duration events is published at `--rate` (half the sustained rate
`bench/pipeline.py` measured, by default) into a running hub on the embedded broker. Every
`--every-s` it samples each hub process's resident memory, each stage group's consumer lag and
the SQLite write-ahead log's size, and prints them. At the end it compares the last third of
the run with the first (after a minute's warm-up): a leak shows as memory that keeps climbing,
a hub slower than its feed as lag that keeps growing. It stops by itself.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from pipeline import deployment, messages_for, start_workers, stop, tree

from connectors.synth.generate import generate
from connectors.synth.replay import published_messages
from mash.consumer_lag import group_lag
from mash.hub_run import publish
from mash.local_kafka import start_broker
from mash.settings import Settings
from mash.topics import HUB_STAGE_INPUTS, OUTCOMES, stage_group, topic_name

# The broker a benchmark starts is plaintext, as its baselines are (the bus itself defaults to
# SASL_SSL): set before any Settings is made, and passed on to the workers it starts.
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")

WARM_UP_S = 60.0


@dataclass
class Sample:
    at_s: float
    published: int
    outcomes: int
    lag: dict[str, int]  # stage -> messages behind, all its partitions
    rss_mb: list[float]  # every hub process
    wal_mb: float
    db_mb: float  # SQLite's page cache (up to 256 MB a connection) grows with the file it caches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=700.0, help="events/s (default: about half the hub's "
                        "sustained rate on 2 cores, from bench/pipeline.py)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--every-s", type=float, default=15.0)
    parser.add_argument("--database-url", help="PostgreSQL for the hub (default: a fresh SQLite file)")
    args = parser.parse_args()
    events = int(args.rate * args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="mash-bench-soak-") as tmp:
        work = Path(tmp)
        print(f"soak: generating a synthetic feed of about {events:,} events ...", flush=True)
        generate(work / "feed", events, seed=5)
        feed = published_messages(work / "feed")
        broker = start_broker(work / "kafka", Settings().kafka_jars_dir)
        try:
            soak(work, broker.bootstrap, args, feed)
        finally:
            broker.stop()


def soak(work: Path, bootstrap: str, args: argparse.Namespace, feed: list) -> None:  # type: ignore[type-arg]
    settings = deployment(work, bootstrap, args, "soak")
    messages = messages_for(settings, feed)
    procs = start_workers(settings, "hub", args.workers)
    sent = [0]
    publisher = threading.Thread(target=lambda: sent.__setitem__(0, publish(
        bootstrap, messages, per_second=args.rate, progress=lambda n: sent.__setitem__(0, n))), daemon=True)
    print(f"soak: {len(messages):,} messages at {args.rate:,.0f}/s for {args.minutes:g} min into {args.workers} "
          f"worker(s); a sample every {args.every_s:g} s", flush=True)
    print(f"  {'t (s)':>6} {'published':>10} {'outcomes':>9}  {'lag enr/sha/tri':>17}  {'WAL MB':>7} {'DB MB':>7}  "
          "RSS MB per process")
    samples: list[Sample] = []
    started = time.monotonic()
    publisher.start()
    try:
        while publisher.is_alive() or not samples or sum(samples[-1].lag.values()) > 0:
            time.sleep(args.every_s)
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a hub worker exited; see its log in the run's state folder")
            sample = take(settings, procs, time.monotonic() - started, sent[0])
            samples.append(sample)
            print(f"  {sample.at_s:>6.0f} {sample.published:>10,} {sample.outcomes:>9,}  "
                  f"{'/'.join(str(sample.lag.get(s, 0)) for s in HUB_STAGE_INPUTS):>17}  "
                  f"{sample.wal_mb:>7.1f} {sample.db_mb:>7.0f}  "
                  f"{', '.join(f'{r:.0f}' for r in sample.rss_mb)}", flush=True)
            if time.monotonic() - started > args.minutes * 60 + 300:
                print("  the hub did not catch up within 5 minutes of the feed's end")
                break
    finally:
        stop(procs)
    report(samples, args)


def take(settings: Settings, procs: list, at_s: float, published: int) -> Sample:  # type: ignore[type-arg]
    lag = {}
    for stage, topics in HUB_STAGE_INPUTS.items():
        behind = group_lag(settings.bootstrap_servers, stage_group(stage, settings),
                           [topic_name(t, settings) for t in topics])
        lag[stage] = sum(behind.values()) if behind else 0
    wal, db = settings.state_dir / "mash.db-wal", settings.state_dir / "mash.db"
    return Sample(at_s, published, on_topic(settings.bootstrap_servers, topic_name(OUTCOMES, settings)), lag,
                  [rss_mb(pid) for p in procs for pid in tree(p.pid)],
                  _mb(wal), _mb(db))


def _mb(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def on_topic(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def rss_mb(pid: int) -> float:
    """Resident memory now (VmRSS), not the peak: a leak is memory that keeps climbing."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def report(samples: list[Sample], args: argparse.Namespace) -> None:
    steady = [s for s in samples if s.at_s >= WARM_UP_S and s.published < int(args.rate * args.minutes * 60)]
    if len(steady) < 3:
        print("\ntoo short to compare the start with the end: run longer than a few samples past a minute")
        return
    third = max(1, len(steady) // 3)
    first, last = steady[:third], steady[-third:]
    rss_first = statistics.mean(sum(s.rss_mb) for s in first)
    rss_last = statistics.mean(sum(s.rss_mb) for s in last)
    lag_first = statistics.mean(sum(s.lag.values()) for s in first)
    lag_last = statistics.mean(sum(s.lag.values()) for s in last)
    done = samples[-1]
    print(f"\nsteady feed, {len(steady)} samples from {steady[0].at_s:.0f} s to {steady[-1].at_s:.0f} s:")
    print(f"  RSS of the hub's processes: first third {rss_first:,.0f} MB, last third {rss_last:,.0f} MB "
          f"({100 * (rss_last - rss_first) / rss_first:+.1f}%)")
    print(f"  consumer lag, all stages: first third {lag_first:,.0f}, last third {lag_last:,.0f}, "
          f"most {max(sum(s.lag.values()) for s in steady):,}")
    print(f"  WAL at most {max(s.wal_mb for s in samples):.1f} MB; at the end: {done.outcomes:,} outcomes, "
          f"lag {sum(done.lag.values()):,}")


if __name__ == "__main__":
    main()
