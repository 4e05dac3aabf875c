"""Verifying the audit trail: an untouched chain of `--records` entries, read back from SQL.

The entries are sealed as the sharing stage seals them (four chains, one per partition; each
naming one of the default policy's decision sets, stored once), written to SQLite, then verified
with `mash audit verify`'s own code. The baseline reads the same rows and hashes each body with
SHA-256 and nothing else, the least any verification must do, so the ratio is the price of the
checks (links, sequence, columns against the sealed body, decision sets).

    .venv/bin/python bench/audit_verify.py [--records 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from mash.db import make_engine, session_factory
from mash.models import AuditRecordRow, Base
from mash.settings import Settings
from services.sharing import audit_store
from services.sharing.audit_chain import Head, seal, verify
from services.sharing.decide import decide_all
from services.sharing.decision_record import DecisionSet, decision_entry, decision_set
from services.sharing.policy import load_policy
from services.sharing.policy_cases import load_cases, sample

CHAINS = 4
BATCH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mash-bench-") as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'audit.db'}")
        Base.metadata.create_all(engine)
        sessions = session_factory(engine)
        started = time.perf_counter()
        fill(sessions, args.records)
        print(f"audit verify: {args.records:,} entries written in {time.perf_counter() - started:.1f} s", flush=True)
        with sessions() as session:
            started = time.perf_counter()
            hashed = 0
            rows = session.execute(select(AuditRecordRow.body).execution_options(yield_per=5000))
            for (body,) in rows:
                hashlib.sha256(body.encode()).hexdigest()
                hashed += 1
            bare = hashed / (time.perf_counter() - started)
        with sessions() as session:
            started = time.perf_counter()
            result = verify(audit_store.read_chains(session))
            ours = result.records / (time.perf_counter() - started)
        assert result.broken is None and result.records == args.records, result
    print(f"  baseline: read + SHA-256 of each body   {bare:>10,.0f} records/s")
    print(f"  mash audit verify (whole chain checked) {ours:>10,.0f} records/s   ratio {ours / bare:.2f}")


def fill(sessions: object, records: int) -> None:
    policy = load_policy(Settings().sharing_policy)
    cases = load_cases(Settings().sharing_policy.with_name("default.cases.yaml"))
    sets: list[DecisionSet] = []
    for case in cases:
        facts, fields = sample(case.event)
        sets.append(decision_set(decide_all(policy, facts, fields)))
    heads = {f"p{n}": Head() for n in range(CHAINS)}
    now = datetime.now(UTC)
    stored: set[str] = set()
    for start in range(0, records, BATCH):
        entries, new_sets = [], {}
        pending: dict[str, list[tuple[dict[str, object], DecisionSet]]] = {}
        for n in range(start, min(start + BATCH, records)):
            chosen = sets[n % len(sets)]
            header = {"event_id": str(uuid.UUID(int=n)), "person_id": str(uuid.UUID(int=10**9 + n // 3)),
                      "event_type": "police.public_protection_notification", "source_agency": "POLICE",
                      "consent": "NOT_SOUGHT"}
            pending.setdefault(f"p{n % CHAINS}", []).append((decision_entry(chosen, header, policy.version, now),
                                                             chosen))
            if chosen.digest not in stored:
                new_sets[chosen.digest] = chosen.text
        for chain, items in pending.items():
            sealed = seal(chain, heads[chain], [entry for entry, _ in items])
            heads[chain] = Head(sealed[-1].seq, sealed[-1].hash)
            entries += [audit_store.Entry(s, str(e["event_id"]), f"{e['event_id']}/hub:sharing", d.digest)
                        for s, (e, d) in zip(sealed, items, strict=True)]
        with sessions.begin() as session:  # type: ignore[attr-defined]
            audit_store.append(session, entries, new_sets)
        stored |= set(new_sets)


if __name__ == "__main__":
    main()
