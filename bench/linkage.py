"""Linkage quality: pairwise precision, recall and F1 of the person index against the synthetic
feed's ground truth, beside a baseline that links on exact identifiers only, in one run.

Both link the same events, as the connectors would publish them, in the order the hub would
receive them, through the real person index on a fresh SQLite database. A pair of events is
"linked" when both end at the same person (after merges); the truth says which pairs are the
same child. Possible matches held for review count as not linked.

    .venv/bin/python bench/linkage.py [--events 100000] [--missing-identifiers 0.3] [--twins 0.1]

`--twins`: that share of second and later children in a household are twins of the child before
(same date of birth, same sex two times in three). Brothers, sisters and twins wrongly joined into
one person are counted: the target is none.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from connectors.synth.generate import generate
from connectors.synth.replay import published_messages
from mash.codec import Codec
from mash.db import make_engine
from mash.models import Base, LinkDecisionRecord, MatchReview, Person, PersonMerge
from services.enrichment.estimate import estimate, u_from_random_pairs
from services.enrichment.guard_rails import judge
from services.enrichment.match_cases import load_cases
from services.enrichment.match_model import DEFAULT_MODEL, MatchModel
from services.enrichment.person_index import PersonIndex
from services.enrichment.stage import event_to_link
from services.enrichment.training_pairs import blocked_candidates, pair_patterns, random_pair_patterns

BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--missing-identifiers", type=float, default=0.3, metavar="SHARE")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--twins", type=float, default=0.0, metavar="SHARE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mash-linkage-") as tmp:
        work = Path(tmp)
        print(f"linkage benchmark: generating {args.events:,} events, "
              f"{args.missing_identifiers:.0%} without strong identifiers", flush=True)
        generate(work / "feed", args.events, args.seed, missing_identifiers=args.missing_identifiers,
                 twins=args.twins)
        published = published_messages(work / "feed")
        values = {m.event_id: m.value for m in published}
        rows = list(map(json.loads, (work / "feed" / "truth" / "events.jsonl").read_text().splitlines()))
        child_of_record = {row["record_id"]: row["person"] for row in rows}
        household = {row["person"]: row["household"] for row in rows}
        truth = {}
        order = []
        for m in published:  # in the connectors' order, resubmissions included
            truth[m.event_id] = child_of_record[m.record_id]
            order.append(m.event_id)
        codec = Codec()
        links = [event_to_link(*_decoded(codec, values[event_id])) for event_id in order]
        without = sum(1 for link in links if not any(i.scheme in ("nhs", "upn") for i in link.identifiers))
        print(f"  {len(truth):,} distinct events ({len(order) - len(truth):,} resubmissions), "
              f"{len(set(truth.values())):,} children; {without / len(links):.1%} of events carry no valid "
              f"NHS number or UPN", flush=True)
        runs: list[tuple[str, MatchModel | None]] = [("baseline: exact identifiers only", None),
                                                     ("person index, default weights", DEFAULT_MODEL)]
        for n, (name, model) in enumerate(runs):
            predicted, figures = run(work / f"run{n}.db", links, model)
            precision, recall, f1 = pairwise(truth, predicted)
            joined = siblings_joined(truth, household, predicted)
            print(f"  {name:34} precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  "
                  f"siblings/twins joined {joined}  {figures}", flush=True)
            if model is DEFAULT_MODEL:
                learned = learn(work / f"run{n}.db")
                runs.append((f"person index, EM weights {learned.version}", learned))
        print("targets: precision >= 0.995, recall >= 0.95")


def learn(db: Path) -> MatchModel:
    """Estimate m and u by EM from the pairs in an index the default model built (no truth used)."""
    engine = make_engine(f"sqlite:///{db}")
    with sessionmaker(engine)() as session:
        patterns = pair_patterns(session)
        u = u_from_random_pairs(random_pair_patterns(session))
        described = blocked_candidates(session)
    engine.dispose()
    result = estimate(patterns, DEFAULT_MODEL, fixed_u=u)
    verdict = judge(result.model, DEFAULT_MODEL, load_cases(), described)
    print(f"  EM: {result.pairs:,} unlabelled pairs, {result.iterations} iterations, "
          f"{result.match_share:.1%} estimated matches; guard rails: "
          f"{len(verdict.cases) - len(verdict.failed)} of {len(verdict.cases)} labelled cases as expected, "
          f"{verdict.review_rate:.2%} of the events behind {len(described):,} descriptions held for review if "
          "they came with no identifier "
          f"(default weights {verdict.review_rate_in_use:.2%}): {'accepted' if verdict.accepted else 'REFUSED'}",
          flush=True)
    for failed in verdict.failed:
        print(f"    failed: {failed.case.name}: {failed.outcome} ({failed.score}), expected {failed.case.expect}")
    return result.model


def _decoded(codec: Codec, value: bytes) -> tuple[dict[str, object], str]:
    event, writer = codec.decode(value)
    return event, writer.name


def run(db: Path, links: list, model: MatchModel | None) -> tuple[dict[str, str], str]:  # type: ignore[type-arg]
    engine = make_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine)
    index = PersonIndex(sessions, model)
    started = time.perf_counter()
    for start in range(0, len(links), BATCH):
        index.link_batch(links[start:start + BATCH])
    elapsed = time.perf_counter() - started
    with sessions() as session:
        merged = {person: into for person, into in session.execute(
            select(Person.person_id, Person.merged_into).where(Person.merged_into.is_not(None))) if into}
        decisions = dict(session.execute(select(LinkDecisionRecord.event_id, LinkDecisionRecord.person_id)).all())
        methods = Counter(dict(session.execute(select(LinkDecisionRecord.method, func.count())
                                               .group_by(LinkDecisionRecord.method)).all()))
        reviews = session.scalar(select(func.count()).select_from(MatchReview)) or 0
        merges = session.scalar(select(func.count()).select_from(PersonMerge))
    engine.dispose()
    predicted = {event_id: _survivor(person_id, merged) for event_id, person_id in decisions.items()}
    figures = (f"[{len(links) / elapsed:,.0f} events/s; probabilistic links {methods['PROBABILISTIC']:,}, "
               f"held for review {reviews:,} ({reviews / len(links):.1%} of events), merges {merges:,}]")
    return predicted, figures


def _survivor(person_id: str, merged: dict[str, str]) -> str:
    while person_id in merged:
        person_id = merged[person_id]
    return person_id


def siblings_joined(truth: dict[str, int], household: dict[int, int], predicted: dict[str, str]) -> int:
    """Pairs of different children of one household whose events ended in one person."""
    children: dict[str, set[int]] = {}
    for event_id, child in truth.items():
        children.setdefault(predicted[event_id], set()).add(child)
    joined = 0
    for together in children.values():
        homes = Counter(household[child] for child in together)
        joined += sum(n * (n - 1) // 2 for n in homes.values())
    return joined


def pairwise(truth: dict[str, int], predicted: dict[str, str]) -> tuple[float, float, float]:
    """Pairwise precision and recall from the contingency of predicted and true clusters."""
    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    both = Counter((predicted[e], truth[e]) for e in truth)
    true_positive = sum(pairs(n) for n in both.values())
    predicted_pairs = sum(pairs(n) for n in Counter(predicted[e] for e in truth).values())
    true_pairs = sum(pairs(n) for n in Counter(truth.values()).values())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


if __name__ == "__main__":
    main()
