"""`mash connector ...`: list, check and run the connectors."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

from kafka.errors import KafkaError

from connectors.registry import all_connectors, build_connector
from connectors.sdk.config import ConfigError
from connectors.sdk.contract import Connector
from connectors.sdk.offsets import OffsetStore
from connectors.sdk.runner import Runner, RunReport, make_producer, prepare_all
from connectors.sdk.sources.base import Source
from mash.codec import Codec
from mash.kafka_security import kafka_python_options
from mash.settings import Settings, get_settings


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    connector = commands.add_parser("connector", help="agency connectors")
    actions = connector.add_subparsers(title="actions", required=True)
    actions.add_parser("list", help="the connectors, their sources and topics").set_defaults(handler=_list)
    run_cmd = actions.add_parser("run", help="read the connector's source and produce its events")
    run_cmd.add_argument("name")
    run_cmd.add_argument("--config", type=Path, help="YAML configuration (default: the embedded stack's)")
    run_cmd.add_argument("--report-json", type=Path, help="write the run's counts here")
    run_cmd.add_argument("--sample", action="store_true",
                         help="first put the connector's shipped sample where its source reads (to try it out)")
    run_cmd.add_argument("--synth", type=Path, metavar="DIR",
                         help="read the agency's feed from a `mash synth` folder (checkpoints kept there)")
    run_cmd.set_defaults(handler=_run)
    answer = actions.add_parser("answer", help="answer the MASH's information requests to the connector's agency "
                                "from its source, until stopped (Ctrl-C)")
    answer.add_argument("name")
    answer.add_argument("--config", type=Path, help="YAML configuration (default: the embedded stack's)")
    answer.add_argument("--sample", action="store_true", help="first put the connector's shipped sample in place")
    answer.add_argument("--until-idle", action="store_true",
                        help="stop once a poll finds nothing new (for scripts and the demo)")
    answer.set_defaults(handler=_answer)
    check = actions.add_parser("check", help="map a sample and print events or errors; sends nothing")
    check.add_argument("name")
    check.add_argument("sample", type=Path)
    check.set_defaults(handler=_check)


def register_synth(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    synth = commands.add_parser("synth", help="generate a synthetic population and agency feeds with ground truth")
    synth.add_argument("--events", type=int, default=10_000, help="how many events (1 to 2,000,000)")
    synth.add_argument("--seed", type=int, default=1, help="the same seed gives the same feed")
    synth.add_argument("--out", type=Path, required=True, help="folder to write (replaced)")
    synth.add_argument("--missing-identifiers", type=float, default=0.0, metavar="SHARE",
                       help="write about this share of events with no NHS number or UPN (e.g. 0.3)")
    synth.set_defaults(handler=_synth)


def _synth(args: argparse.Namespace) -> int:
    from connectors.synth.generate import generate

    generate(args.out, args.events, args.seed, progress=lambda message: print(f"synth: {message}", flush=True),
             missing_identifiers=args.missing_identifiers)
    return 0


def _list(_: argparse.Namespace) -> int:
    for name, cls in all_connectors().items():
        print(f"{name:12} {cls.event_type:42} {cls.config_class.__name__:18} sample: {cls.sample}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from connectors.sdk.metrics import ConnectorMetrics
    from mash import logs, metrics
    from mash.health import broker_answers
    from mash.local_kafka import resolve_bootstrap
    from mash.metrics import MetricsServer

    settings = get_settings()
    connector = _connector(args, settings)
    if connector is None:
        return 2
    if args.sample:
        connector.install_sample()
    if args.synth:
        connector = connector.use_synth(args.synth)
    state_url = connector.config.state_url or f"sqlite:///{settings.state_dir / 'connectors.db'}"
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    offsets = OffsetStore(state_url, connector.name)
    bootstrap = resolve_bootstrap(settings)
    try:
        producer = make_producer(bootstrap, kafka_python_options(settings, connector.principal))
    except KafkaError:
        print(f"mash: no Kafka broker answers at {bootstrap}; start one (`mash kafka start`) or set "
              "MASH_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    source = connector.open_source()
    _stop_on_signals(source)
    logs.configure(f"connector-{connector.name}", settings.log_format)
    metrics.initialise_connector(connector.name)
    server = MetricsServer(f"connector-{connector.name}", settings.metrics_host, settings.metrics_port,
                           lambda: {"kafka": broker_answers(bootstrap)},
                           settings.state_dir / "metrics-targets")
    try:
        report = Runner(connector, producer, offsets, settings, progress=_progress,
                        observer=ConnectorMetrics()).run(source)
    finally:
        server.close()
        producer.close()
        offsets.close()
    print(f"\r{args.name}: done: read {report.read}, produced {report.produced}, "
          f"dead-lettered {report.dead_lettered}      ", file=sys.stderr)
    if args.report_json:
        args.report_json.write_text(json.dumps(report.as_dict()))
    return 0


def _connector(args: argparse.Namespace, settings: Settings) -> Connector | None:
    """The named connector with its configuration, or None having said why it cannot be built."""
    try:
        return build_connector(args.name, settings.state_dir, args.config)
    except ConfigError as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return None


def _answer(args: argparse.Namespace) -> int:
    import time

    from connectors.sdk.answering import RequestAnswerer, SourceUnavailable
    from mash.local_kafka import resolve_bootstrap
    from mash.topics import DEADLETTER, RETURNS, requests_topic, topic_name

    settings = get_settings()
    connector = _connector(args, settings)
    if connector is None:
        return 2
    answer = connector.answerer()
    if answer is None or connector.enquiry_agency is None:
        print(f"mash: the {args.name} connector does not answer information requests from its source: its "
              "agency answers them in the partner portal (/portal)", file=sys.stderr)
        return 2
    if args.sample:
        connector.install_sample()
    agency = connector.enquiry_agency
    answerer = RequestAnswerer(resolve_bootstrap(settings), agency, topic_name(requests_topic(agency), settings),
                               topic_name(RETURNS, settings), topic_name(DEADLETTER, settings),
                               f"{settings.app_id}.answer.{agency}", answer, f"{connector.name}-connector",
                               client=kafka_python_options(settings, connector.principal))
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            before = answerer.report.answered + answerer.report.left_to_portal + answerer.report.dead_letters
            try:
                report = answerer.poll_once(timeout_ms=2000)
            except SourceUnavailable as exc:
                print(f"\n{args.name}: {exc}; trying again in 10 s (the requests wait, none is lost)",
                      file=sys.stderr, flush=True)
                time.sleep(10)
                continue
            now = report.answered + report.left_to_portal + report.dead_letters
            print(f"\r{args.name}: answered {report.answered}, left to the portal {report.left_to_portal}, "
                  f"dead-lettered {report.dead_letters}", end="", file=sys.stderr, flush=True)
            if args.until_idle and now == before and answerer.assigned():
                break
    except KafkaError as exc:
        print(f"\nmash: Kafka refused ({type(exc).__name__}): is the broker up (`mash kafka start`)?", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    finally:
        answerer.close()
    print(file=sys.stderr)
    return 0


def _stop_on_signals(source: Source) -> None:
    """Ctrl-C or SIGTERM: finish the current record, confirm and checkpoint, then exit."""
    def stop(_signum: int, _frame: FrameType | None) -> None:
        source.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _progress(report: RunReport) -> None:
    print(f"\r{report.connector}: {report.read} read, {report.produced} produced, "
          f"{report.dead_lettered} dead-lettered", end="", file=sys.stderr, flush=True)


def _check(args: argparse.Namespace) -> int:
    settings = get_settings()
    connector = build_connector(args.name, settings.state_dir)
    failures = 0
    for outcome in prepare_all(connector, connector.sample_records(args.sample), Codec()):
        if outcome.error is None:
            print(f"ok    {outcome.record.label}  key={outcome.key!r}")
        else:
            failures += 1
            print(f"ERROR {outcome.record.label}  {type(outcome.error).__name__}: {outcome.error}")
    return 1 if failures else 0
