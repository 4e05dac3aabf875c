"""`mash policy` (check and test sharing policies) and `mash audit` (verify and explain the trail)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register_policy(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = commands.add_parser("policy", help="information-sharing policies: check and test")
    actions = policy.add_subparsers(title="actions", required=True)
    check = actions.add_parser("check", help="load a policy and report every problem with its line")
    check.add_argument("policy", type=Path)
    check.set_defaults(handler=_check)
    test = actions.add_parser("test", help="check a policy's decisions against expected cases")
    test.add_argument("policy", type=Path)
    test.add_argument("cases", type=Path, nargs="+")
    test.set_defaults(handler=_test)


def register_audit(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = commands.add_parser("audit", help="the sharing decisions' audit trail: verify and explain")
    actions = audit.add_subparsers(title="actions", required=True)
    verify = actions.add_parser("verify", help="check every hash chain; name the first broken record")
    verify.add_argument("--topic", action="store_true",
                        help="verify the records on the audit topic instead of the database")
    verify.add_argument("--database-only", action="store_true",
                        help="check the database without comparing it with the signed records on the topic "
                             "(a truncated tail or a deleted chain then cannot be seen)")
    verify.set_defaults(handler=_verify)
    explain = actions.add_parser("explain", help="why each role saw what it saw of one event")
    explain.add_argument("event_id")
    explain.set_defaults(handler=_explain)


def _check(args: argparse.Namespace) -> int:
    from services.sharing.policy import PolicyError, load_policy

    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{args.policy}: {policy.name}: {len(policy.rules)} rules, version {policy.version[:12]}")
    return 0


def _test(args: argparse.Namespace) -> int:
    from services.sharing.policy import PolicyError, load_policy
    from services.sharing.policy_cases import load_cases, run_case

    try:
        policy = load_policy(args.policy)
        cases = [case for path in args.cases for case in load_cases(path)]
    except PolicyError as exc:
        print(exc, file=sys.stderr)
        return 1
    failed = 0
    for case in cases:
        failures = run_case(policy, case)
        failed += bool(failures)
        print(f"{'FAIL' if failures else 'ok  '} {case.name}")
        for failure in failures:
            print(f"       [{failure.role}] {failure.problem}")
    print(f"{len(cases)} cases, {failed} failed (policy {policy.version[:12]})")
    return 1 if failed else 0


def _verify(args: argparse.Namespace) -> int:
    from mash.settings import get_settings
    from services.sharing.audit_chain import VerifyResult, verify
    from services.sharing.audit_keys import audit_keys

    settings = get_settings()
    keys = audit_keys(settings)
    started = time.perf_counter()
    if args.topic:
        unreadable: list[str] = []
        on_topic = verify(_topic_records(settings, unreadable=unreadable), keys)
        return max(_report(f"topic {_audit_topic(settings)}", on_topic, time.perf_counter() - started),
                   _unreadable(unreadable))
    from mash.db import engine_for, session_factory
    from services.sharing import audit_store

    with session_factory(engine_for(settings))() as session:
        result: VerifyResult = verify(audit_store.read_chains(session), keys)
        status = _report("the database", result, time.perf_counter() - started)
        status = max(status, _check_decisions(session, keys))
        if args.database_only:
            print("not compared with the topic (--database-only): a truncated tail or a deleted chain "
                  "cannot be seen without it", file=sys.stderr)
            return status
        return max(status, _check_anchors(settings, session, result, keys))


def _audit_topic(settings: Any) -> str:
    from mash.topics import AUDIT, topic_name

    return topic_name(AUDIT, settings)


def _topic_records(settings: Any, **how: Any) -> Any:
    from mash.codec import Codec
    from mash.kafka_security import OPERATOR, kafka_python_options
    from mash.local_kafka import resolve_bootstrap
    from services.sharing.audit_topic import read_topic

    return read_topic(resolve_bootstrap(settings), _audit_topic(settings), Codec(),
                      client=kafka_python_options(settings, OPERATOR), **how)


def _unreadable(messages: list[str]) -> int:
    for message in messages:
        print(f"NOT AN AUDIT RECORD on the topic: {message}", file=sys.stderr)
    return 1 if messages else 0


def _report(where: str, result: Any, elapsed: float) -> int:
    rate = result.records / elapsed if elapsed > 0 else 0.0
    repeats = f", {result.duplicates:,} exact repeats skipped" if result.duplicates else ""
    print(f"audit trail in {where}: {result.records:,} records in {len(result.heads)} chains checked "
          f"({rate:,.0f} records/s){repeats}")
    for chain, head in sorted(result.heads.items()):
        print(f"  chain {chain}: last record {head.seq}, hash {head.hash}")
    for record in result.foreign:
        print(f"FOREIGN at {record}: read past", file=sys.stderr)
    if result.broken:
        print(f"BROKEN at {result.broken}", file=sys.stderr)
        print("Records from there on cannot be trusted; compare with the other copy "
              "(database or topic) to see what was changed.", file=sys.stderr)
        return 1
    print("intact: every record matches its hash, follows the one before, and is signed by an audit key")
    return 0


def _check_decisions(session: Any, keys: Any) -> int:
    """The decisions the app shows and sends, and every other row its pages read (alerts, their
    history, the timeline), must be what the audit trail sealed."""
    from services.triage_app import sealed_views
    from services.triage_app.sealed_decisions import unsealed_decisions

    mismatches, checked = unsealed_decisions(session, keys)
    for mismatch in mismatches:
        print(f"DECISION NOT AS SEALED: {mismatch}", file=sys.stderr)
    print(f"triage decisions: {checked:,} checked against their sealed audit entries, {len(mismatches)} differ")
    shown = sealed_views.check(session, keys)
    for mismatch in shown.mismatches:
        print(f"SHOWN NOT AS SEALED: {mismatch}", file=sys.stderr)
    legacy = ", ".join(f"{n:,} {what}" for what, n in sorted(shown.unsealed_legacy.items()) if n)
    print(f"what the pages show: {', '.join(f'{n:,} {what}' for what, n in sorted(shown.checked.items())) or 'nothing'}"
          f" checked against the trail, {len(shown.mismatches)} differ"
          + (f" ({legacy} written before sealing began: not checked)" if legacy else ""))
    return 1 if mismatches or shown.mismatches else 0


def _check_anchors(settings: Any, session: Any, result: Any, keys: Any) -> int:
    """The database's chains against the signed records on the topic: what the database lost or
    changed that the topic still holds."""
    from mash.health import broker_answers
    from mash.local_kafka import resolve_bootstrap
    from services.sharing import audit_store
    from services.sharing.audit_chain import anchored, verify

    try:
        bootstrap = resolve_bootstrap(settings)
    except (SystemExit, Exception) as exc:  # noqa: BLE001 - no broker configured or running: said below
        bootstrap, reason = "", str(exc) or "no broker configured or running"
    else:
        reason = f"no broker answers at {bootstrap}"
    if not bootstrap or not broker_answers(bootstrap):
        print(f"INCOMPLETE: could not compare with the topic ({reason}): a truncated tail or a deleted chain "
              "cannot be seen without it. Start the broker, or run with --database-only to check the "
              "database alone.", file=sys.stderr)
        return max(3, 1 if result.broken else 0)
    unreadable: list[str] = []
    topic = verify(_topic_records(settings, legacy_through=audit_store.unsigned_through(session),
                                  unreadable=unreadable), keys)
    status = max(_report(f"topic {_audit_topic(settings)}", topic, 0.0), _unreadable(unreadable))
    standing = anchored(result.heads, topic.anchors, lambda chain, seq: audit_store.hash_at(session, chain, seq),
                        published=audit_store.published_through(session))
    for problem in standing.problems:
        print(f"NOT AS ANCHORED: {problem}", file=sys.stderr)
    for note in standing.behind:
        print(f"  note: {note}")
    if not standing.problems:
        print(f"anchored: the database holds every one of the {len(topic.anchors)} chains on the topic, "
              "up to its last signed record, unchanged")
    return max(status, 1 if standing.problems else 0)


def _explain(args: argparse.Namespace) -> int:
    import orjson

    from mash.db import engine_for, session_factory
    from mash.settings import get_settings
    from services.sharing.audit_store import for_event
    from services.sharing.explain import explain

    with session_factory(engine_for(get_settings()))() as session:
        records = [{**sealed.record, "decisions": orjson.loads(sealed.decisions or "[]")}
                   for sealed in for_event(session, args.event_id)]
    print(explain(records))
    return 0 if records else 1
