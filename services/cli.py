"""`mash hub worker`: run the hub's Faust worker."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    hub = commands.add_parser("hub", help="the hub's stream processors")
    actions = hub.add_subparsers(title="actions", required=True)
    worker = actions.add_parser("worker", help="run enrichment, triage and the triage store")
    worker.add_argument("--loglevel", default="warning")
    worker.add_argument("--stages", default="enrichment,triage,triage-store",
                        help="comma-separated stages to run in this worker (default: all)")
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    import faust

    from mash.local_kafka import resolve_bootstrap
    from mash.settings import get_settings
    from services.hub.app import build_app

    settings = get_settings()
    app = build_app(settings, resolve_bootstrap(settings), [s.strip() for s in args.stages.split(",") if s.strip()])
    worker = faust.Worker(app, loglevel=args.loglevel)
    worker.execute_from_commandline()
    return 0
