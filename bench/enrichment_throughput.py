"""Enrichment throughput on one worker with a large person index, beside a bare passthrough agent.

Both run as one hub worker over the same events on a real broker, with the hub's stage loop
(a batch, a thread for it, the output acknowledged before the input is committed): the baseline
agent copies each inbound message to its output; ours is the enrichment stage (decode, link
against a SQLite person index pre-filled with `--persons` children, context, encode). The
rate is taken from the first output to the last, so start-up and group joining do not count.

    .venv/bin/python bench/enrichment_throughput.py [--persons 1000000] [--events 20000]

The filled index is kept in .mash/bench/ and copied for each run (building 1,000,000 persons
takes a few minutes the first time).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import SecretStr
from sqlalchemy import insert
from sqlalchemy.orm import sessionmaker

from connectors.synth.generate import PERIOD_DAYS, PERIOD_START, generate
from connectors.synth.population import population
from connectors.synth.replay import published_events
from mash.codec import Codec
from mash.db import make_engine
from mash.identifiers import upn_check_letter
from mash.local_kafka import start_broker
from mash.models import Base, Person, PersonAddress, PersonBlockKey, PersonIdentifier, PersonProfile
from mash.settings import Settings
from mash.topics import ENRICHED, INBOUND_SCHEMAS, inbound, provision, topic_name
from services.enrichment.blocking import stored_keys
from services.enrichment.comparisons import Profile, normalise_name, normalise_postcode
from services.enrichment.context import address_key
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import event_to_link
from services.hub.app import BATCH_SIZE

# The broker a benchmark starts is plaintext, as its baselines are (the bus itself defaults to
# SASL_SSL): set before any Settings is made, and passed on to the workers it starts.
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 50_000
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_USED: set[str] = set()  # moved identifiers already given (a rare clash is left out, not reused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000, help="children in the index before the run")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--worker", choices=("passthrough",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        passthrough_worker()
        return
    cached = ROOT / ".mash" / "bench" / f"person-index-{args.persons}.db"
    if not cached.exists():
        fill_index(cached, args.persons)
    with tempfile.TemporaryDirectory(prefix="mash-bench-") as tmp:
        work = Path(tmp)
        broker = start_broker(work / "kafka", Settings().kafka_jars_dir)
        try:
            run(work, broker.bootstrap, cached, args.events, args.persons)
        finally:
            broker.stop()


def run(work: Path, bootstrap: str, cached: Path, events: int, persons: int) -> None:
    generate(work / "feed", events, seed=11, missing_identifiers=0.3)
    values = published_events(work / "feed")
    print(f"enrichment benchmark: {len(values):,} events; index of {persons:,} persons; broker {bootstrap}",
          flush=True)
    codec = Codec()
    results = {}
    for name in ("passthrough", "enrichment"):
        settings = Settings(bootstrap_servers=bootstrap, topic_prefix=f"{name}.", app_id=f"bench-{name}",
                            state_dir=work / name, database_url=SecretStr(f"sqlite:///{work / name / 'index.db'}"))
        settings.state_dir.mkdir()
        provision(bootstrap, settings)
        publish(bootstrap, settings, values, codec)
        if name == "enrichment":
            shutil.copyfile(cached, work / name / "index.db")
        results[name] = measure(name, settings, len(values))
        rate, rss = results[name]
        print(f"  {name:12} {rate:>8,.0f} events/s   worker peak RSS {rss:,.0f} MB", flush=True)
    print(f"ratio enrichment / passthrough: {results['enrichment'][0] / results['passthrough'][0]:.2f}; "
          f"target: enrichment >= 2,000 events/s")
    offline(work / "offline.db", cached, values, codec, results["passthrough"][0])


def offline(path: Path, cached: Path, values: dict[str, bytes], codec: Codec, passthrough: float) -> None:
    """The person index alone on the same events and a fresh copy of the index, no Kafka, profiled:
    how much of each event is SQLite's own work (its C calls), the floor under any Python above it."""
    shutil.copyfile(cached, path)
    links = [event_to_link(event, writer.name) for event, writer in map(codec.decode, values.values())]
    index = PersonIndex(sessionmaker(make_engine(f"sqlite:///{path}")))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for start in range(0, len(links), BATCH_SIZE):
        index.link_batch(links[start:start + BATCH_SIZE])
    profiler.disable()
    elapsed = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    engine = sum(entry[2] for (module, _, name), entry in stats.items()
                 if module == "~" and "sqlite3" in name)
    per_event_ms = 1000 * engine / len(links)
    budget_ms = 1000 * (1 / 2000 - 1 / passthrough)
    print(f"  index alone (no Kafka, profiled) {len(links) / elapsed:>8,.0f} events/s; SQLite's own calls "
          f"{per_event_ms:.2f} ms/event; at 2,000 events/s one event may add {budget_ms:.2f} ms to the "
          f"passthrough's cost", flush=True)


def publish(bootstrap: str, settings: Settings, values: dict[str, bytes], codec: Codec) -> None:
    topics = {schema: topic_name(inbound(agency), settings) for agency, schema in INBOUND_SCHEMAS.items()}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    for value in values.values():
        producer.send(topics[codec.writer_of(value).name], value=value)
    producer.flush()
    producer.close()


def measure(name: str, settings: Settings, expected: int) -> tuple[float, float]:
    """Start the worker, watch its output topic fill, and stop it."""
    env = {**os.environ, "MASH_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
           "MASH_TOPIC_PREFIX": settings.topic_prefix, "MASH_APP_ID": settings.app_id,
           "MASH_STATE_DIR": str(settings.state_dir), "MASH_DATABASE_URL": settings.database_url.get_secret_value()}
    command = [sys.executable, __file__, "--worker", "passthrough"] if name == "passthrough" else \
        [sys.executable, "-m", "mash.cli", "hub", "worker", "--stages", "enrichment"]
    with (settings.state_dir / "worker.log").open("wb") as log:
        worker = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        first_at, first_count, last_at = watch(settings, expected, worker)
        rss = peak_rss_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return (expected - first_count) / (last_at - first_at), rss


def watch(settings: Settings, expected: int, worker: subprocess.Popen[bytes]) -> tuple[float, int, float]:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    topic = topic_name(ENRICHED, settings)
    partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    first: tuple[float, int] | None = None
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited ({worker.returncode}); see {settings.state_dir / 'worker.log'}")
            count = sum(consumer.end_offsets(partitions).values())
            now = time.monotonic()
            if count and first is None:
                first = (now, count)
            if count >= expected and first is not None:
                return first[0], first[1], now
            time.sleep(0.05)
    finally:
        consumer.close()
    raise SystemExit(f"timed out waiting for {expected:,} messages on {topic}")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def passthrough_worker() -> None:
    """The baseline: the hub's stage loop (batch, outputs acknowledged, then commit) around a copy."""
    import asyncio

    from mash.settings import get_settings
    from services.hub.app import make_hub
    from services.messages import InMessage, OutMessage

    settings = get_settings()
    hub = make_hub(settings, settings.bootstrap_servers)

    def copy(batch: list[InMessage]) -> list[OutMessage]:
        return [OutMessage(ENRICHED, m.key, m.value) for m in batch]

    hub.add("enrichment", copy)  # the enrichment stage's inputs and group, with a stage that only copies
    asyncio.run(hub.run())


def _elsewhere(nhs: str, upn: str | None, n: int) -> tuple[str, str | None]:
    """The child's identifiers moved out of the feed's ranges: NHS numbers starting 3, 5 or 7 (the
    feed's start 4, 6 or 9) and UPNs of LA codes 830-889 (the feed's LA is 820); both still valid."""
    digits = {"4": "3", "6": "5", "9": "7"}[nhs[0]] + nhs[1:9]
    check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
    if check == 10:  # never issued: change a digit so the number stays valid
        digits = digits[:8] + str((int(digits[8]) + 1) % 10)
        check = 11 - sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
    moved_nhs = digits + str(0 if check == 11 else check)
    if upn is None:
        return moved_nhs, None
    body = f"{830 + n % 60}{upn[4:]}"
    return moved_nhs, upn_check_letter(body) + body


def fill_index(path: Path, persons: int) -> None:
    """A person index of `persons` children as if each had been seen once, written in bulk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    Base.metadata.create_all(engine)
    started = time.monotonic()
    children = population(random.Random(99), persons, PERIOD_START, PERIOD_DAYS)
    print(f"filling a person index of {persons:,} children (once; kept in {path.parent})", flush=True)
    rows: dict[Any, list[dict[str, Any]]] = {m: [] for m in (Person, PersonIdentifier, PersonProfile,
                                                             PersonBlockKey, PersonAddress)}
    for n, child in enumerate(children, start=1):
        _rows_for(child, rows)
        if n % CHUNK == 0 or n == len(children):
            with engine.begin() as db:
                for model, batch in rows.items():
                    db.execute(insert(model.__table__), batch)
                    batch.clear()
            print(f"  {n:,} persons ({time.monotonic() - started:.0f} s)", flush=True)
    engine.dispose()
    partial.rename(path)


def _rows_for(child: Any, rows: dict[Any, list[dict[str, Any]]]) -> None:
    person_id = f"00000000-0000-4000-8000-{child.person:012d}"
    line, postcode = child.addresses[-1][1], child.addresses[-1][2]
    profile = Profile(normalise_name(child.given), normalise_name(child.family), child.dob, child.sex,
                      normalise_postcode(postcode))
    # Other local authorities' children, as a regional index would hold: their UPNs carry other LA
    # codes and their NHS numbers another range, so the feed's children are new to the index.
    nhs, upn = _elsewhere(child.nhs, child.upn, child.person)
    rows[Person].append({"person_id": person_id, "created_at": _EPOCH, "open_social_care": False,
                         "child_protection_plan": False, "looked_after": False, "merged_into": None})
    identifiers = [(scheme, value) for scheme, value in (("nhs", nhs), ("upn", upn)) if value and value not in _USED]
    _USED.update(value for _, value in identifiers)
    identifiers.append(("local", f"HEALTH:BG{child.person}"))
    rows[PersonIdentifier].extend({"scheme": s, "value": v, "person_id": person_id, "first_seen_event_id": "fill"}
                                  for s, v in identifiers)
    rows[PersonProfile].append({"person_id": person_id, "given": profile.given, "family": profile.family,
                                "dob": child.dob.isoformat(), "sex": child.sex, "postcode": profile.postcode,
                                "first_event_id": "fill", "first_seen_ms": 0, "events": 1})
    rows[PersonBlockKey].extend({"key": k, "person_id": person_id, "given": profile.given, "family": profile.family,
                                 "dob": child.dob.isoformat(), "sex": child.sex, "postcode": profile.postcode}
                                for k in stored_keys(profile))
    key = address_key({"address_line": line, "postcode": postcode})
    if key:
        rows[PersonAddress].append({"address_key": key, "person_id": person_id})


if __name__ == "__main__":
    main()
