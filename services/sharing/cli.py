"""`mash policy` (check and test sharing policies) and `mash audit` (verify and explain the trail)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


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

    settings = get_settings()
    started = time.perf_counter()
    result: VerifyResult
    if args.topic:
        from mash.codec import Codec
        from mash.local_kafka import resolve_bootstrap
        from mash.topics import AUDIT, topic_name
        from services.sharing.audit_topic import read_topic

        where = f"topic {topic_name(AUDIT, settings)}"
        result = verify(read_topic(resolve_bootstrap(settings), topic_name(AUDIT, settings), Codec()))
    else:
        from mash.db import engine_for, session_factory
        from services.sharing.audit_store import read_chains

        where = "the database"
        with session_factory(engine_for(settings))() as session:
            result = verify(read_chains(session))
    elapsed = time.perf_counter() - started
    rate = result.records / elapsed if elapsed > 0 else 0.0
    repeats = f", {result.duplicates:,} exact repeats skipped" if result.duplicates else ""
    print(f"audit trail in {where}: {result.records:,} records in {len(result.heads)} chains checked "
          f"({rate:,.0f} records/s){repeats}")
    for chain, head in sorted(result.heads.items()):
        print(f"  chain {chain}: last record {head.seq}, hash {head.hash}")
    if result.broken:
        print(f"BROKEN at {result.broken}", file=sys.stderr)
        print("Records from there on cannot be trusted; compare with the other copy "
              "(database or topic) to see what was changed.", file=sys.stderr)
        return 1
    print("intact: every record matches its hash and follows the one before")
    return 0


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
