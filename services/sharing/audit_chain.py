"""The tamper-evident record of sharing decisions: hash chains, sealed and verified. Pure.

Each record's body is canonical JSON (sorted keys, no spaces) holding its chain, its sequence
number and the previous record's hash; its hash is the SHA-256 of that text. Editing a record
breaks its own hash; deleting or reordering one breaks the link or the sequence of the next.
What was decided for each role is a decision set, stored once and named in the body by the
SHA-256 of its own canonical JSON (`decisions_digest`), so editing a set breaks every record
that names it. One chain per input partition of the sharing stage, so workers never contend
for one head; a chain's records travel in order on one partition of `mash.audit.v1`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from services.sharing.audit_signing import AuditKeys

GENESIS = "0" * 64


@dataclass(frozen=True)
class Sealed:
    chain: str
    seq: int
    prev_hash: str
    hash: str
    body: str  # the canonical JSON the hash is over
    decisions: str | None = None  # the decision set the body names, when read alongside
    signature: str | None = None  # its writer's keyed signature (audit_signing), None before signing began
    legacy: bool = False  # sealed before signing began (as its store or topic position shows): unsigned is expected

    @property
    def record(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass(frozen=True)
class Head:
    seq: int = 0
    hash: str = GENESIS


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int
    position: int  # 1-based position of the broken record in what was read
    problem: str

    def __str__(self) -> str:
        return f"chain {self.chain}, record {self.seq} (position {self.position}): {self.problem}"


def canonical(record: Any) -> str:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seal(chain: str, head: Head, records: Iterable[dict[str, Any]]) -> list[Sealed]:
    """Append records to a chain whose last record is `head`."""
    sealed = []
    seq, prev = head.seq, head.hash
    for record in records:
        seq += 1
        body = canonical({**record, "chain": chain, "seq": seq, "prev_hash": prev})
        digest = hashlib.sha256(body.encode()).hexdigest()
        sealed.append(Sealed(chain, seq, prev, digest, body))
        prev = digest
    return sealed


@dataclass
class VerifyResult:
    records: int
    duplicates: int  # exact repeats (a redelivered append on the topic), skipped
    heads: dict[str, Head]
    broken: Break | None  # the first problem (a foreign record, or where a chain breaks)
    foreign: list[Break] = field(default_factory=list)  # records no key holder wrote: named and read past
    anchors: dict[str, Head] = field(default_factory=dict)  # each chain's last record signed by a held key


def verify(stored: Iterable[Sealed], keys: AuditKeys | None = None) -> VerifyResult:
    """Check chains in the order they were read; stop where a chain breaks. With `keys`, every record
    must also be signed by its chain's writer (or predate signing): one that is not was written by
    someone else, so it is named and read past (the chain goes on from the record before it), and
    one foreign record cannot hide what follows it."""
    heads: dict[str, Head] = {}
    anchors: dict[str, Head] = {}
    seen: dict[str, dict[int, str]] = {}  # chain -> seq -> hash, to recognise a re-sent record
    sets: dict[str, str] = {}  # decision sets already checked against their digest
    foreign: list[Break] = []
    count = duplicates = 0
    for position, item in enumerate(stored, start=1):
        head = heads.get(item.chain, Head())
        if 0 < item.seq <= head.seq and seen[item.chain].get(item.seq) == item.hash:
            duplicates += 1
            continue
        unsigned = keys.problem(item.chain, item.seq, item.hash, item.signature, item.legacy) if keys else None
        if unsigned:
            foreign.append(Break(item.chain, item.seq, position, unsigned))
            continue
        problem = _problem(item, head, sets)
        if problem:
            broken = Break(item.chain, item.seq, position, problem)
            return VerifyResult(count, duplicates, heads, foreign[0] if foreign else broken, foreign, anchors)
        heads[item.chain] = Head(item.seq, item.hash)
        if keys and item.signature is not None:
            anchors[item.chain] = heads[item.chain]
        seen.setdefault(item.chain, {})[item.seq] = item.hash
        count += 1
    return VerifyResult(count, duplicates, heads, foreign[0] if foreign else None, foreign, anchors)


def _problem(item: Sealed, head: Head, sets: dict[str, str]) -> str | None:
    if hashlib.sha256(item.body.encode()).hexdigest() != item.hash:
        return "its content does not match its hash: the record was edited"
    try:
        body = orjson.loads(item.body)
    except orjson.JSONDecodeError:
        return "its body is not JSON: the record was edited"
    if (body.get("chain"), body.get("seq"), body.get("prev_hash")) != (item.chain, item.seq, item.prev_hash):
        return "its chain, sequence or link columns differ from its sealed body: the record was edited"
    if item.seq != head.seq + 1:
        if item.seq > head.seq + 1:
            return f"records {head.seq + 1}..{item.seq - 1} are missing before it: deleted"
        return f"it comes after record {head.seq}: the chain was reordered"
    if item.prev_hash != head.hash:
        return "it does not link to the record before it: a record was deleted, replaced or reordered"
    return _set_problem(item, body.get("decisions_digest"), sets)


def _set_problem(item: Sealed, named: str | None, checked: dict[str, str]) -> str | None:
    if named is None:
        return None
    if item.decisions is None:  # on the topic, a set rides once with the first entry of a batch naming it
        return None if named in checked else f"the decision set it names ({named[:12]}) is missing: deleted"
    if checked.get(named) != item.decisions:
        if digest(item.decisions) != named:
            return f"the decision set it names ({named[:12]}) does not match its digest: the set was edited"
        checked[named] = item.decisions
    return None


def by_chain(records: Iterable[Sealed]) -> Iterator[Sealed]:
    """Records in chain order, chains one after another (for stores read in any order)."""
    yield from sorted(records, key=lambda r: (r.chain, r.seq))


@dataclass(frozen=True)
class Anchoring:
    """How a store's chains stand against the signed records on the topic (the anchors)."""

    problems: list[str]  # the store lost or changed what the topic holds
    behind: list[str]  # the topic does not yet hold what the store does (in flight, or lost on the topic)


def anchored(store: dict[str, Head], topic: dict[str, Head], store_hash_at: Callable[[str, int], str | None],
             published: Mapping[str, int] | None = None) -> Anchoring:
    """Every chain the topic holds must be in the store, reaching at least the topic's last record with
    the same hash (the chains link every earlier record to it): a chain deleted, a tail truncated or a
    chain rewritten and rehashed in the store shows here, whatever the store's own chains say. A chain
    the store says it published (`published`: the outbox's cursor) must be on the topic that far: a
    cursor moved on would leave what follows unanchored."""
    problems, behind = [], []
    for chain, seq in sorted((published or {}).items()):
        on_topic = topic.get(chain, Head()).seq
        if seq > on_topic:
            problems.append(f"chain {chain}: published through record {seq} says the outbox's cursor, the topic "
                            f"holds it through {on_topic}: the cursor was moved (or the topic lost them)")
    for chain, anchor in sorted(topic.items()):
        mine = store.get(chain)
        if mine is None:
            problems.append(f"chain {chain}: {anchor.seq} records on the topic, none in the database: the chain "
                            "was deleted")
        elif mine.seq < anchor.seq:
            problems.append(f"chain {chain}: records {mine.seq + 1}..{anchor.seq} are on the topic but not in the "
                            "database: its tail was truncated")
        elif store_hash_at(chain, anchor.seq) != anchor.hash:
            problems.append(f"chain {chain}: record {anchor.seq} in the database differs from the topic's: the "
                            "chain was rewritten")
        elif mine.seq > anchor.seq:
            behind.append(f"chain {chain}: records {anchor.seq + 1}..{mine.seq} are not on the topic yet")
    behind += [f"chain {chain}: not on the topic yet ({head.seq} records)" for chain, head in sorted(store.items())
               if chain not in topic]
    return Anchoring(problems, behind)
