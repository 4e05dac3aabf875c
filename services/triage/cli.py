"""`mash triage check|test`: the RAG scoring rules and their expected cases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.triage.scoring_file import DEFAULT_SCORING


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    triage = commands.add_parser("triage", help="RAG scoring rules (check, test) and the triage web app (serve)")
    actions = triage.add_subparsers(title="actions", required=True)
    check = actions.add_parser("check", help="load scoring rules and report problems")
    check.add_argument("scoring", type=Path, nargs="?", default=DEFAULT_SCORING)
    check.set_defaults(handler=_check)
    test = actions.add_parser("test", help="rate each case of the cases file(s) and compare with its expectation")
    test.add_argument("scoring", type=Path, nargs="?", default=DEFAULT_SCORING)
    test.add_argument("cases", type=Path, nargs="*")
    test.set_defaults(handler=_test)
    from services.triage_app.cli import register_serve

    register_serve(actions)


def _check(args: argparse.Namespace) -> int:
    from services.triage.scoring_file import ScoringError, load_scoring

    try:
        scoring = load_scoring(args.scoring)
    except ScoringError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.scoring}: {scoring.name}: {len(scoring.events) + len(scoring.patterns)} indicators, "
          f"alert at {scoring.alert_at}, AMBER {scoring.amber_at}, RED {scoring.red_at}; "
          f"version {scoring.version[:12]}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from services.triage.scoring_file import ScoringError, load_cases, load_scoring, run_case

    paths = args.cases or [args.scoring.with_name(args.scoring.stem + ".cases.yaml")]
    try:
        scoring = load_scoring(args.scoring)
        cases = [case for path in paths for case in load_cases(path)]
    except ScoringError as exc:
        print(exc, file=sys.stderr)
        return 1
    failed = 0
    for case in cases:
        result = run_case(scoring, case)
        failed += bool(result.problems)
        print(f"{'FAIL' if result.problems else 'ok  '} {case.name}: {result.rag} ({result.score})")
        for problem in result.problems:
            print(f"       {problem}")
    print(f"{len(cases)} cases, {failed} failed (scoring {scoring.version[:12]})")
    return 1 if failed else 0
