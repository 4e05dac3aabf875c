"""The sharing stage's cost per event beside the enrichment stage's, in one process.

Both stages run as the hub runs them (batches of the hub's size, a real SQLite database, the
real codec), over the same synthetic feed: enrichment links each inbound event against a fresh
person index (the feed's own children); sharing decides every role's view of each enriched event under the shipped
policy, seals the event's decisions into the hash chain, commits them, and encodes the views
and the audit entry. Cost is CPU time per event (time.process_time), the median of --repeat
runs on fresh databases. Target: sharing adds less than 20% to enrichment's cost.

    .venv/bin/python bench/sharing_cost.py [--events 20000] [--persons 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from connectors.synth.generate import generate
from connectors.synth.replay import published_events
from mash.codec import Codec
from mash.db import make_engine, session_factory
from mash.models import Base
from mash.settings import Settings
from mash.topics import ENRICHED, inbound
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import Enricher
from services.hub.app import BATCH_SIZE, tune_gc
from services.messages import InMessage, OutMessage
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs on fresh databases; medians are printed")
    parser.add_argument("--persons", type=int, default=1_000_000,
                        help="other children already in the person index, as bench/enrichment_throughput.py "
                             "fills it (cached in .mash/bench/; the reference scale of a regional hub); "
                             "0: the index starts empty")
    args = parser.parse_args()
    cached = None
    if args.persons:
        from enrichment_throughput import ROOT, fill_index  # bench/ is on the path when run as a script

        cached = ROOT / ".mash" / "bench" / f"person-index-{args.persons}.db"
        if not cached.exists():
            fill_index(cached, args.persons)
    codec = Codec()
    tune_gc()  # as the hub worker runs both stages
    with tempfile.TemporaryDirectory(prefix="mash-bench-") as tmp:
        work = Path(tmp)
        generate(work / "feed", args.events, seed=5, missing_identifiers=0.3)
        values = list(published_events(work / "feed").values())
        print(f"sharing cost: {len(values):,} events, batches of {BATCH_SIZE}, SQLite, {args.repeat} runs, "
              f"person index of {args.persons:,} other children before the run", flush=True)
        runs = [run(work / f"run-{n}", values, codec, cached) for n in range(args.repeat)]
    enrichment = statistics.median(r[0] for r in runs)
    sharing = statistics.median(r[1] for r in runs)
    print(f"  enrichment {enrichment:6.3f} ms/event ({1000 / enrichment:,.0f} events/s)   runs: "
          + ", ".join(f"{r[0]:.3f}" for r in runs))
    print(f"  sharing    {sharing:6.3f} ms/event ({1000 / sharing:,.0f} events/s)   runs: "
          + ", ".join(f"{r[1]:.3f}" for r in runs))
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"sharing adds {sharing / enrichment:.0%} to enrichment's cost per event (medians); target < 20%")


def run(work: Path, values: list[bytes], codec: Codec, cached: Path | None) -> tuple[float, float]:
    """One run on a fresh database: ms per event of enrichment, then of sharing."""
    work.mkdir()
    if cached:
        shutil.copyfile(cached, work / "hub.db")
    engine = make_engine(f"sqlite:///{work / 'hub.db'}")
    Base.metadata.create_all(engine)
    sessions = session_factory(engine)
    inbound_messages = [InMessage(inbound("police"), n % 4, n, None, v) for n, v in enumerate(values)]
    enricher = Enricher(codec, PersonIndex(sessions))
    enriched: list[OutMessage] = []
    enrichment_s = timed(lambda batch: enriched.extend(enricher.process(batch)), inbound_messages)
    enriched_in = [InMessage(ENRICHED, n % 4, n, m.key, m.value)
                   for n, m in enumerate(m for m in enriched if m.topic == ENRICHED)]
    sharer = Sharer(codec, sessions, PolicySource(Settings().sharing_policy))
    sharing_s = timed(sharer.process, enriched_in)
    engine.dispose()
    return 1000 * enrichment_s / len(inbound_messages), 1000 * sharing_s / len(enriched_in)


def timed(step: object, messages: list[InMessage]) -> float:
    """CPU seconds the process spent on the step: its cost, not the machine's other tenants'."""
    started = time.process_time()
    for start in range(0, len(messages), BATCH_SIZE):
        step(messages[start:start + BATCH_SIZE])  # type: ignore[operator]
    return time.process_time() - started


if __name__ == "__main__":
    main()
