"""Generate a whole synthetic feed: population, events, each agency's files, and the truth."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from connectors.synth.feed import events
from connectors.synth.population import population
from connectors.synth.writers import write_feed

PERIOD_START = date(2025, 11, 25)
PERIOD_DAYS = 365
EVENTS_PER_CHILD = 1.45  # what the rates in feed.py give on average over the period


def generate(out: Path, target_events: int, seed: int = 1,
             progress: Callable[[str], None] = lambda _: None, missing_identifiers: float = 0.0,
             twins: float = 0.0) -> dict[str, int]:
    """`missing_identifiers`: about this share of events are written with no NHS number or UPN
    (some always lack them; below that share, nothing more is stripped). `twins`: the share of
    second and later children in a household born on the same day as the child before."""
    if not 1 <= target_events <= 2_000_000:
        raise ValueError("choose between 1 and 2,000,000 events")
    if not 0.0 <= missing_identifiers < 1.0:
        raise ValueError("the share of events missing identifiers must be from 0 to below 1")
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed)
    children = population(rng, math.ceil(target_events / EVENTS_PER_CHILD * 1.1) + 10, PERIOD_START, PERIOD_DAYS,
                          twins=twins)
    progress(f"{len(children):,} children in {children[-1].household:,} households")
    feed = events(rng, children, target_events, PERIOD_START, PERIOD_DAYS)
    progress(f"{len(feed):,} events; writing each agency's files")
    counts = write_feed(out, seed, children, feed, lambda n: progress(f"  {n:,} of {len(feed):,} written"),
                        missing_identifiers)
    summary = {"seed": seed, "events": len(feed), "children": len(children), **counts}
    (out / "truth" / "summary.json").write_text(json.dumps(summary, indent=1))
    progress(f"done in {time.monotonic() - started:.1f} s: {counts}")
    return summary
