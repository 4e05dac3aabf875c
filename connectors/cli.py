"""`mash connector ...`: list, check and run the connectors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from connectors.registry import CONNECTORS, get_connector
from connectors.sdk.runner import RunReport, make_producer, prepare, run
from connectors.sdk.sources import read_records
from mash.codec import Codec
from mash.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    connector = commands.add_parser("connector", help="agency connectors")
    actions = connector.add_subparsers(title="actions", required=True)
    actions.add_parser("list", help="the connectors and their topics").set_defaults(handler=_list)
    run_cmd = actions.add_parser("run", help="read a source file and produce its events")
    run_cmd.add_argument("name")
    run_cmd.add_argument("--file", type=Path, help="source file (default: the shipped sample)")
    run_cmd.add_argument("--report-json", type=Path, help="write the run's counts here")
    run_cmd.set_defaults(handler=_run)
    check = actions.add_parser("check", help="map a sample and print events or errors; sends nothing")
    check.add_argument("name")
    check.add_argument("sample", type=Path)
    check.set_defaults(handler=_check)


def _list(_: argparse.Namespace) -> int:
    for name, cls in CONNECTORS.items():
        print(f"{name:12} {cls.event_type:42} sample: {cls.sample}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mash.local_kafka import resolve_bootstrap

    settings = get_settings()
    connector = get_connector(args.name)
    path = args.file or connector.sample
    producer = make_producer(resolve_bootstrap(settings))
    try:
        report = run(connector, path, producer, settings, progress=_progress)
    finally:
        producer.close()
    summary = report.as_dict()
    print(f"\r{args.name}: done: read {report.read}, produced {report.produced}, "
          f"dead-lettered {report.dead_lettered}      ", file=sys.stderr)
    if args.report_json:
        args.report_json.write_text(json.dumps(summary))
    return 0


def _progress(report: RunReport) -> None:
    print(f"\r{report.connector}: {report.read} read, {report.produced} produced, "
          f"{report.dead_lettered} dead-lettered", end="", file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> int:
    connector = get_connector(args.name)
    failures = 0
    for outcome in prepare(connector, read_records(args.sample), Codec()):
        if outcome.error is None:
            print(f"ok    {outcome.record.position}  key={outcome.key!r}")
        else:
            failures += 1
            print(f"ERROR {outcome.record.position}  {type(outcome.error).__name__}: {outcome.error}")
    return 1 if failures else 0
