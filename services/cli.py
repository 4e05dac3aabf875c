"""`mash hub worker`: run the hub's stages (enrichment, sharing, triage), each in a process of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mash.settings import Settings
    from services.enrichment.guard_rails import Described
    from services.enrichment.match_model import MatchModel
    from services.enrichment.term_frequencies import TermFrequencies


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hub = commands.add_parser("hub", help="the hub's stream processors")
    actions = hub.add_subparsers(title="actions", required=True)
    worker = actions.add_parser("worker", help="run enrichment, sharing and triage (which keeps the triage store)")
    worker.add_argument("--loglevel", default="warning")
    worker.add_argument("--stages", default="enrichment,sharing,triage",
                        help="comma-separated stages to run in this worker (default: all)")
    worker.add_argument("--one-process", action="store_true",
                        help="run the stages in this one process (default: a process per stage, "
                        "MASH_HUB_PROCESS_PER_STAGE)")
    worker.set_defaults(handler=_worker)
    moved = actions.add_parser("upgrade-state", help="once, with every worker stopped: move a Faust hub's triage "
                               "state into SQL and start each stage's consumer group where the old group was")
    moved.set_defaults(handler=_upgrade_state)
    model = actions.add_parser("match-model", help="the probabilistic linkage model: estimate or show")
    model_actions = model.add_subparsers(title="match-model actions", required=True)
    estimate = model_actions.add_parser(
        "estimate", help="learn m and u from the person index (EM); written only if it passes the labelled cases "
        "and its review rate is within the bound, and then used by the hub from its next start")
    _guard_rail_options(estimate)
    estimate.add_argument("--no-frequencies", action="store_true",
                          help="leave out term-frequency adjustment (by default the index's commonest names and "
                          "postcodes are counted and go with the learned weights)")
    estimate.set_defaults(handler=_estimate)
    frequencies = model_actions.add_parser(
        "frequencies", help="add term-frequency adjustment to the model in use: count how common each name and "
        "postcode is in the person index, so an exact agreement on a rare one weighs more than on a common one; "
        "written under the same guard rails as estimate")
    _guard_rail_options(frequencies)
    frequencies.set_defaults(handler=_frequencies)
    show = model_actions.add_parser("show", help="print the model in use: weights per level, thresholds, version")
    show.set_defaults(handler=_show)
    test = model_actions.add_parser("test", help="decide the labelled cases with the model in use "
                                    "(exit 1 if any fails)")
    test.add_argument("cases", type=Path, nargs="?", default=None,
                      help="cases file (default: policies/identity/match.cases.yaml)")
    test.set_defaults(handler=_test_model)


def _supervise(stages: list[str], loglevel: str) -> int:
    from mash.db import engine_for
    from mash.settings import get_settings
    from services.hub.app import STAGES
    from services.hub.processes import run_stages

    settings = get_settings()
    unknown = set(stages) - set(STAGES)
    if unknown:
        print(f"mash: unknown stage(s) {', '.join(sorted(unknown))}; choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    engine_for(settings).dispose()  # the schema brought up to date once, before the stage processes start
    return run_stages(settings, stages, loglevel)


def _guard_rail_options(parser: argparse.ArgumentParser) -> None:
    """Where a new model is written, and the sample and bound the guard rails judge it on."""
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file to write (default: <state dir>/match-model.json, which the hub uses "
                        "unless MASH_MATCH_MODEL names another)")
    parser.add_argument("--keys", type=int, default=20_000, help="blocking keys to sample pairs from")
    parser.add_argument("--max-review-rate", type=_share, default=None,
                        help="largest share of the index's descriptions the model may hold for review "
                        "(default 0.02)")


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1 (0.02 is 2%)")
    return value


def _estimate(args: argparse.Namespace) -> int:
    from mash.db import engine_for, session_factory
    from mash.settings import get_settings
    from services.enrichment.estimate import estimate, u_from_random_pairs
    from services.enrichment.match_model import load_model
    from services.enrichment.training_pairs import blocked_candidates, pair_patterns, random_pair_patterns

    settings = get_settings()
    in_use = load_model(settings.match_model_in_use())
    print(f"mash: sampling pairs from the person index ({args.keys:,} blocking keys) ...", file=sys.stderr)
    with session_factory(engine_for(settings))() as session:
        patterns = pair_patterns(session, args.keys)
        random_pairs = random_pair_patterns(session)
        described = blocked_candidates(session, args.keys)
        tf = None if args.no_frequencies else _counted_frequencies(session)
    if not patterns or not random_pairs:
        print("mash: the person index has no pairs to learn from yet; run the hub over some events first",
              file=sys.stderr)
        return 1
    result = estimate(patterns, in_use, fixed_u=u_from_random_pairs(random_pairs))
    print(f"estimated from {result.pairs:,} pairs in {result.iterations} iterations; "
          f"{result.match_share:.2%} of pairs look like matches")
    learned = result.model if tf is None else result.model.with_frequencies(tf, result.model.source + _tf_note(tf))
    return _judge_and_write(args, settings, learned, in_use, described)


def _frequencies(args: argparse.Namespace) -> int:
    from mash.db import engine_for, session_factory
    from mash.settings import get_settings
    from services.enrichment.match_model import load_model
    from services.enrichment.training_pairs import blocked_candidates

    settings = get_settings()
    in_use = load_model(settings.match_model_in_use())
    print("mash: counting names and postcodes in the person index ...", file=sys.stderr)
    with session_factory(engine_for(settings))() as session:
        tf = _counted_frequencies(session)
        described = blocked_candidates(session, args.keys)
    if tf is None:
        print("mash: the person index describes no children yet; run the hub over some events first",
              file=sys.stderr)
        return 1
    base = in_use.source.split(" + term frequencies")[0]
    return _judge_and_write(args, settings, in_use.with_frequencies(tf, base + _tf_note(tf)), in_use, described)


def _counted_frequencies(session: Session) -> TermFrequencies | None:
    from services.enrichment.term_frequencies import term_frequencies
    from services.enrichment.training_pairs import value_counts

    counts, persons = value_counts(session)
    return term_frequencies(counts, persons) if persons else None


def _tf_note(tf: TermFrequencies) -> str:
    """Says what was counted, and returns the words the model's source takes for it."""
    from services.enrichment.term_frequencies import TF_FIELDS

    kept = ", ".join(f"{len(tf.shares.get(f, {})):,} {f}" for f in TF_FIELDS)
    print(f"term frequencies over {tf.persons:,} persons: {kept} values kept")
    return f" + term frequencies over {tf.persons} persons"


def _judge_and_write(args: argparse.Namespace, settings: Settings, learned: MatchModel, in_use: MatchModel,
                     described: list[Described]) -> int:
    """The guard rails (labelled cases, review rate), and the model written only if it passes them."""
    from services.enrichment.guard_rails import MAX_REVIEW_RATE, judge
    from services.enrichment.match_cases import load_cases

    verdict = judge(learned, in_use, load_cases(), described,
                    MAX_REVIEW_RATE if args.max_review_rate is None else args.max_review_rate)
    print(f"labelled cases: {len(verdict.cases) - len(verdict.failed)} of {len(verdict.cases)} decided as expected")
    for failed in verdict.failed:
        print(f"  FAILED {failed.case.name}: {failed.outcome} (score {failed.score}), expected {failed.case.expect}")
    print(f"held for review if they came with no identifier: {verdict.review_rate:.2%} of the events behind "
          f"{len(described):,} descriptions (the model in use: {verdict.review_rate_in_use:.2%}; accepted up to "
          f"{verdict.max_review_rate:.2%} or the model in use's rate)")
    if not verdict.accepted:
        print("mash: the new model is refused and nothing was written; the hub keeps "
              f"{in_use.version} ({in_use.source}). Check the failures above, or raise --max-review-rate "
              "if the partnership can answer that many reviews", file=sys.stderr)
        return 1
    out = args.out or settings.learned_match_model()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(learned.to_json(), indent=1, sort_keys=True))
    print(f"model {learned.version} accepted and written to {out}; " + (
        "the hub links with it from its next start" if out == settings.learned_match_model() and not
        settings.match_model else f"set MASH_MATCH_MODEL={out} to use it"))
    return 0


def _test_model(args: argparse.Namespace) -> int:
    from mash.settings import get_settings
    from services.enrichment.match_cases import DEFAULT_CASES, load_cases, run_cases
    from services.enrichment.match_model import load_model

    model = load_model(get_settings().match_model_in_use())
    results = run_cases(model, load_cases(args.cases or DEFAULT_CASES))
    for r in results:
        mark = "ok  " if r.passed else "FAIL"
        print(f"{mark} {r.case.name}: {r.outcome} (score {r.score}), expected {r.case.expect}")
    failed = sum(not r.passed for r in results)
    print(f"match model {model.version} ({model.source}): {len(results) - failed} of {len(results)} cases as expected")
    return 1 if failed else 0


def _show(_: argparse.Namespace) -> int:
    from mash.settings import get_settings
    from services.enrichment.match_model import LEVELS, load_model

    model = load_model(get_settings().match_model_in_use())
    print(f"match model {model.version} ({model.source}): link >= {model.link_threshold}, "
          f"review >= {model.review_threshold}, lead over the next candidate >= {model.margin}")
    for field, levels in LEVELS.items():
        print(f"  {field:9} " + "  ".join(f"{lvl} {model.weights[field][lvl]:+.1f}" for lvl in levels))
    if model.tf is not None:
        from services.enrichment.term_frequencies import MAX_BITS
        print(f"  term frequencies over {model.tf.persons:,} persons: an exact name or postcode weighs up to "
              f"{MAX_BITS:g} bits more if rare, less if common")
    return 0


def _upgrade_state(_: argparse.Namespace) -> int:
    from mash.db import engine_for, session_factory
    from mash.local_kafka import resolve_bootstrap
    from mash.settings import get_settings
    from services.hub.upgrade import changelog_topic, upgrade_state

    settings = get_settings()
    done = upgrade_state(settings, resolve_bootstrap(settings), session_factory(engine_for(settings)))
    print(f"triage state: {done.states:,} persons loaded from {changelog_topic(settings)}")
    for group, partitions in done.groups.items():
        print(f"consumer group {group}: {partitions} partition(s) start where {settings.app_id} had committed")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    from mash import logs
    from mash.local_kafka import resolve_bootstrap
    from mash.settings import get_settings
    from services.hub import operations
    from services.hub.app import build_hub, tune_gc
    from services.hub.upgrade import UpgradeNeeded

    settings = get_settings()
    logs.configure("hub", settings.log_format, args.loglevel)
    bootstrap = resolve_bootstrap(settings)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if len(stages) > 1 and settings.hub_process_per_stage and not args.one_process:
        return _supervise(stages, args.loglevel)
    try:
        hub = build_hub(settings, bootstrap, stages)
    except UpgradeNeeded as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    server, lag = operations.start(settings, bootstrap, hub.sessions, hub.loops)
    tune_gc()
    logging.getLogger("mash.hub").info("metrics, health and readiness on http://%s/", server.address)
    try:
        asyncio.run(hub.run())
    finally:
        lag.stop()
        server.close()
    return 0
