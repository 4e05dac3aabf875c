"""Connector publish rate: the police connector against a bare kafka-python producer, same run.

Both send the same synthetic police records to a real broker (the embedded one unless
MASH_BOOTSTRAP_SERVERS is set). The baseline sends each source line as it is, with the same
producer settings (acks=all, idempotent, same batching); the connector reads the file drop,
maps, validates, encodes, keys, confirms and checkpoints. The ratio is the connector's rate over
the baseline's: what the SDK's work costs.

    .venv/bin/python bench/connector_publish.py [--events 120000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from connectors.registry import build_connector
from connectors.sdk.offsets import OffsetStore
from connectors.sdk.runner import Runner, make_producer
from connectors.synth.generate import generate
from mash.codec import Codec
from mash.local_kafka import start_broker
from mash.settings import Settings
from mash.topics import provision, topic_name

# The broker a benchmark starts is plaintext, as its baselines are (the bus itself defaults to
# SASL_SSL): set before any Settings is made, and passed on to the workers it starts.
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=120_000, help="synthetic events (police are ~12%%)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mash-bench-") as tmp:
        work = Path(tmp)
        broker = None
        bootstrap = os.environ.get("MASH_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = start_broker(work / "kafka", Settings().kafka_jars_dir)
            bootstrap = broker.bootstrap
        try:
            run(work, bootstrap, args.events)
        finally:
            if broker:
                broker.stop()


def run(work: Path, bootstrap: str, events: int) -> None:
    generate(work / "feed", events, seed=3)
    files = sorted((work / "feed" / "police" / "inbox").iterdir())
    lines = [line for path in files for line in path.read_bytes().splitlines()]
    print(f"connector publish benchmark: {len(lines):,} police records, broker {bootstrap}")

    settings = Settings(bootstrap_servers=bootstrap, topic_prefix="bench.", state_dir=work / "state")
    provision(bootstrap, settings)

    producer = make_producer(bootstrap)
    started = time.perf_counter()
    futures = [producer.send(topic_name("mash.inbound.police.v1", settings), value=line) for line in lines]
    producer.flush()
    for future in futures:
        future.get(timeout=60)
    baseline = len(lines) / (time.perf_counter() - started)
    producer.close()
    print(f"  baseline: bare kafka-python producer  {baseline:>9,.0f} records/s")

    floor = floor_rate(lines, bootstrap, settings)
    print(f"  floor: validated Avro encode + keyed send of pre-mapped events  {floor:>9,.0f} records/s "
          f"(ceiling for any schema-checked connector: ratio {floor / baseline:.2f})")

    connector = build_connector("police", settings.state_dir, overrides={"batch_size": 2000})
    connector.config.inbox.mkdir(parents=True)  # type: ignore[attr-defined]
    for path in files:
        path.rename(connector.config.inbox / path.name)  # type: ignore[attr-defined]
    offsets = OffsetStore(f"sqlite:///{work / 'offsets.db'}", connector.name)
    producer = make_producer(bootstrap)
    started = time.perf_counter()
    report = Runner(connector, producer, offsets, settings).run(connector.open_source())
    ours = report.read / (time.perf_counter() - started)
    producer.close()
    print(f"  police connector (file drop → topic)  {ours:>9,.0f} records/s  "
          f"({report.produced:,} produced, {report.dead_lettered:,} dead-lettered)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ratio connector / baseline: {ours / baseline:.2f} (target >= 0.8); peak RSS {peak_mb:.0f} MB")


def floor_rate(lines: list[bytes], bootstrap: str, settings: Settings) -> float:
    """The least a schema-checked connector must do per record, with mapping done beforehand."""
    connector = build_connector("police", settings.state_dir / "floor")
    events = [connector.to_event(connector.map(json.loads(line))) for line in lines]
    codec = Codec()
    producer = make_producer(bootstrap)
    topic = topic_name("mash.inbound.police.v1", settings)
    started = time.perf_counter()
    for event in events:
        producer.send(topic, key=event["envelope"]["subject"]["local_id"].encode(),
                      value=codec.encode(event, connector.schema))
    producer.flush()
    rate = len(events) / (time.perf_counter() - started)
    producer.close()
    return rate


if __name__ == "__main__":
    main()
