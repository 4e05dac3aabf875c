"""The `mash` command line.

The kernel's own commands live here; the edge and the hub add theirs through the
`mash.commands` entry point group (`connectors.cli`, `services.cli`), so the kernel never
imports either side.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points
from itertools import pairwise
from pathlib import Path

from mash.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    from mash.db import SchemaNotCurrent
    from mash.errors import UnusableFile
    from mash.kafka_security import KafkaSecurityError

    try:
        return int(args.handler(args) or 0)
    except SchemaNotCurrent as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    except UnusableFile as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    except KafkaSecurityError as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mash", description="The MASH integration bus.")
    commands = parser.add_subparsers(title="commands")
    _add_kafka(commands)
    _add_topics(commands)
    _add_schemas(commands)
    _add_db(commands)
    demo = commands.add_parser("demo", help="run the whole pipeline over the shipped samples")
    demo.set_defaults(handler=_demo)
    settings = commands.add_parser("settings", help="every MASH_* setting: default and meaning")
    settings.set_defaults(handler=_settings)
    for plugin in entry_points(group="mash.commands"):
        plugin.load()(commands)
    return parser


def _add_kafka(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    kafka = commands.add_parser("kafka", help="the embedded Kafka broker (KRaft, loopback)")
    actions = kafka.add_subparsers(title="actions", required=True)
    actions.add_parser("fetch", help="fetch the broker's jars from Maven Central").set_defaults(handler=_kafka_fetch)
    actions.add_parser("start", help="start the broker in the background").set_defaults(handler=_kafka_start)
    actions.add_parser("stop", help="stop the background broker").set_defaults(handler=_kafka_stop)
    acls = actions.add_parser("acls", help="print each service principal's Kafka ACLs (what it may read and write); "
                              "--apply makes the broker's ACLs exactly these")
    acls.add_argument("--apply", action="store_true", help="create what is missing and delete what a declared "
                      "principal holds beyond the declaration (as the operator principal)")
    acls.set_defaults(handler=_kafka_acls)
    bundle = actions.add_parser(
        "bundle", help="write what a containerised broker and each service need to reach it securely "
        "(docker-compose.yml runs this first): TLS files, the broker's configuration with every principal's SCRAM "
        "credential, and one folder per principal with its password and the CA; left as it is if it exists")
    bundle.add_argument("out", type=Path, help="the folder to write (broker/ and one folder per principal)")
    bundle.add_argument("--host", default="kafka", help="the name the services reach the broker by (default kafka)")
    bundle.add_argument("--port", type=int, default=9092, help="its client port (default 9092)")
    bundle.set_defaults(handler=_kafka_bundle)
    credentials = actions.add_parser(
        "credentials", help="set a service principal's SCRAM password on the running cluster (rotation, without "
        "stopping the bus; docs/runbook.md): the new password is read from standard input, never the command line")
    credentials.add_argument("principal", help="hub, triage-app or connector-<agency>")
    credentials.add_argument("--generate", action="store_true", help="the embedded stack: make a random password and "
                             "write it where the principal's processes read it (state_dir/kafka/credentials)")
    credentials.set_defaults(handler=_kafka_credentials)


def _add_topics(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    topics = commands.add_parser("topics", help="the topic catalogue")
    actions = topics.add_subparsers(title="actions", required=True)
    actions.add_parser("list", help="print the catalogue").set_defaults(handler=_topics_list)
    actions.add_parser("provision", help="create missing topics").set_defaults(handler=_topics_provision)


def _add_db(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = commands.add_parser("db", help="the hub's database")
    actions = db.add_subparsers(title="actions", required=True)
    actions.add_parser("upgrade", help="migrate the schema as its owner (MASH_DATABASE_OWNER_URL) and grant the "
                       "processes' role least privilege; run before starting processes").set_defaults(
        handler=_db_upgrade)


def _db_upgrade(_: argparse.Namespace) -> int:
    from mash.db import db_upgrade

    try:
        before, now, grants = db_upgrade(get_settings())
    except ValueError as exc:  # a setting that would defeat least privilege
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    print(f"database schema: {before or 'empty'} -> {now}" if before != now else f"database schema: {now} (current)")
    if grants:
        print(f"granted the processes' role least privilege ({len(grants)} statements): rows in every table, "
              "the audit trail read and append only")
    return 0


def _add_schemas(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    schemas = commands.add_parser("schemas", help="the Avro schemas under schemas/")
    actions = schemas.add_subparsers(title="actions", required=True)
    actions.add_parser("check", help="parse every schema and check BACKWARD compatibility").set_defaults(
        handler=_schemas_check)


def _kafka_fetch(_: argparse.Namespace) -> int:
    from mash.local_kafka import ensure_jars

    print(ensure_jars(get_settings().kafka_jars_dir))
    return 0


def _kafka_start(_: argparse.Namespace) -> int:
    from mash.local_kafka import start_detached

    broker = start_detached(get_settings())
    print(f"kafka: {broker.bootstrap} (pid {broker.pid}); stop with `mash kafka stop`")
    return 0


def _kafka_acls(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from mash.acl_sync import sync_acls
    from mash.kafka_acls import render
    from mash.local_kafka import resolve_bootstrap

    settings = get_settings()
    print(render(settings))
    if not args.apply:
        return 0
    try:
        changes = sync_acls(resolve_bootstrap(settings), settings)
    except KafkaError as exc:
        print(f"mash: the broker refused ({type(exc).__name__}: {exc}); --apply connects as the operator "
              "principal: check MASH_KAFKA_USERNAME / MASH_KAFKA_PASSWORD name the cluster's ACL admin",
              file=sys.stderr)
        return 2
    print(f"\nkafka acls: created {len(changes.created)}, deleted {len(changes.deleted)}")
    for verb, grants in (("+", changes.created), ("-", changes.deleted)):
        for grant in grants:
            print(f"  {verb} {grant.line()}")
    return 0


def _kafka_bundle(args: argparse.Namespace) -> int:
    from mash.broker_bundle import BundleExists, write_bundle

    try:
        principals = write_bundle(args.out, host=args.host, port=args.port)
    except BundleExists as exc:
        print(f"kafka bundle: left as it is: {exc}")
        return 0
    except ValueError as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    print(f"kafka bundle: {args.out}/broker for {args.host}:{args.port}, and a password for each of "
          f"{', '.join(principals)} in its own folder (passwords are never printed)")
    return 0


def _kafka_credentials(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from mash.local_kafka import resolve_bootstrap
    from mash.scram_credentials import CredentialError, rotate_embedded, set_password

    settings = get_settings()
    try:
        if args.generate:
            rotate_embedded(resolve_bootstrap(settings), settings, args.principal)
        else:
            set_password(resolve_bootstrap(settings), settings, args.principal, sys.stdin.readline().rstrip("\n"))
    except CredentialError as exc:
        print(f"mash: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"mash: the broker refused ({type(exc).__name__}); this connects as the operator principal: check "
              "MASH_KAFKA_USERNAME / MASH_KAFKA_PASSWORD name the cluster's admin", file=sys.stderr)
        return 2
    print(f"kafka: new password set for {args.principal}; its processes use it from their next connection "
          "(restart them one at a time: docs/runbook.md)")
    return 0


def _kafka_stop(_: argparse.Namespace) -> int:
    from mash.local_kafka import stop_detached

    print("kafka: stopped" if stop_detached(get_settings()) else "kafka: not running")
    return 0


def _topics_list(_: argparse.Namespace) -> int:
    from mash.topics import CATALOGUE, topic_name

    settings = get_settings()
    for spec in CATALOGUE:
        days = spec.retention_ms // 86_400_000
        print(f"{topic_name(spec.name, settings):32} {spec.partitions or settings.topic_partitions:>3}p "
              f"{days:>4}d  key={spec.key:24} {spec.schema}")
    return 0


def _topics_provision(_: argparse.Namespace) -> int:
    from mash.local_kafka import resolve_bootstrap
    from mash.topics import provision

    settings = get_settings()
    created = provision(resolve_bootstrap(settings), settings)
    print(f"topics: created {len(created)}: {', '.join(created) or '(all existed)'}")
    return 0


def _schemas_check(_: argparse.Namespace) -> int:
    from mash.compatibility import backward_problems
    from mash.schema_catalogue import default_catalogue

    failures = 0
    for name, versions in default_catalogue().families().items():
        for older, newer in pairwise(versions):
            for problem in backward_problems(newer.expanded, older.expanded):
                print(f"{newer.path}: not BACKWARD compatible with v{older.version}: {problem}")
                failures += 1
        latest = versions[-1]
        print(f"ok  {name} v{latest.version} (envelope v{latest.generation}; {len(versions)} readable forms)")
    return 1 if failures else 0


def _settings(_: argparse.Namespace) -> int:
    from mash.settings import Settings

    current = get_settings()
    for name, field in Settings.model_fields.items():
        value = getattr(current, name)
        shown = "**********" if "secret" in type(value).__name__.lower() else value
        print(f"MASH_{name.upper()}={shown}\n    {field.description}")
    return 0


def _demo(_: argparse.Namespace) -> int:
    from mash.demo import run_demo

    return run_demo(get_settings())


if __name__ == "__main__":
    sys.exit(main())
