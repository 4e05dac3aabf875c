"""The hash chain: an untouched chain verifies; an edit, deletion or reordering is named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.sharing.audit_chain import GENESIS, Head, Sealed, canonical, digest, seal, verify


def chain(n: int, name: str = "p0") -> list[Sealed]:
    return seal(name, Head(), [{"event_id": f"e{i}", "recipient_role": "triage_manager", "outcome": "SHARE"}
                               for i in range(1, n + 1)])


def test_an_untouched_chain_verifies_and_reports_its_head() -> None:
    records = chain(50) + chain(20, "p1")
    result = verify(records)
    assert result.broken is None and result.records == 70
    assert result.heads["p0"] == Head(50, records[49].hash) and result.heads["p1"].seq == 20
    assert records[0].prev_hash == GENESIS and records[1].prev_hash == records[0].hash


def test_appending_to_a_chain_continues_from_its_head() -> None:
    first = chain(3)
    more = seal("p0", Head(3, first[-1].hash), [{"event_id": "e4"}])
    assert verify(first + more).broken is None and more[0].seq == 4


def test_an_edited_record_is_named() -> None:
    records = chain(10)
    body = records[4].record | {"outcome": "WITHHOLD"}
    records[4] = replace(records[4], body=canonical(body))
    broken = verify(records).broken
    assert broken is not None and (broken.seq, broken.position) == (5, 5) and "edited" in broken.problem


def test_an_edit_that_recomputes_its_own_hash_breaks_the_next_link() -> None:
    import hashlib

    records = chain(10)
    body = canonical(records[4].record | {"outcome": "WITHHOLD"})
    records[4] = replace(records[4], body=body, hash=hashlib.sha256(body.encode()).hexdigest())
    broken = verify(records).broken
    assert broken is not None and broken.seq == 6 and "does not link" in broken.problem


def test_a_deleted_record_is_named_by_the_gap() -> None:
    records = chain(10)
    del records[6]
    broken = verify(records).broken
    assert broken is not None and broken.seq == 8 and "7..7 are missing" in broken.problem


def test_reordered_records_are_named() -> None:
    records = chain(10)
    records[3], records[4] = records[4], records[3]
    broken = verify(records).broken
    assert broken is not None and broken.position == 4 and "missing" in broken.problem


def test_an_exact_repeat_is_a_redelivery_not_a_break() -> None:
    records = chain(6)
    result = verify(records[:4] + records[2:4] + records[4:])
    assert result.broken is None and result.duplicates == 2 and result.records == 6


def with_sets(n: int) -> list[Sealed]:
    decisions = canonical([{"recipient_role": "triage_manager", "outcome": "SHARE"}])
    sealed = seal("p0", Head(), [{"event_id": f"e{i}", "decisions_digest": digest(decisions)}
                                 for i in range(1, n + 1)])
    return [replace(s, decisions=decisions) for s in sealed]


def test_a_decision_set_is_bound_to_every_record_that_names_it() -> None:
    records = with_sets(5)
    assert verify(records).broken is None
    records[2] = replace(records[2], decisions=records[2].decisions.replace("SHARE", "WITHHOLD"))  # type: ignore[union-attr]
    broken = verify(records).broken
    assert broken is not None and broken.seq == 3 and "the set was edited" in broken.problem

    records = [replace(r, decisions=None) if r.seq >= 1 else r for r in with_sets(5)]  # the set deleted
    broken = verify(records).broken
    assert broken is not None and broken.seq == 1 and "missing" in broken.problem


def test_on_the_topic_a_set_needs_to_ride_only_with_the_first_entry_naming_it() -> None:
    records = with_sets(5)
    assert verify([records[0]] + [replace(r, decisions=None) for r in records[1:]]).broken is None


# -- who wrote an entry: keyed signatures ---------------------------------------------------------------

KEY, OTHER = b"k" * 16 + b"e" * 16, b"o" * 40


def test_an_entry_signed_by_a_held_key_is_accepted_and_any_change_or_stranger_is_named() -> None:
    from services.sharing.audit_signing import AuditKeys

    keys = AuditKeys.of(KEY)
    signature = keys.sign("p0", 3, "a" * 64)
    assert keys.problem("p0", 3, "a" * 64, signature) is None
    assert "does not match" in (keys.problem("p0", 4, "a" * 64, signature) or "")  # moved
    assert "does not match" in (keys.problem("p0", 3, "b" * 64, signature) or "")  # rehashed
    assert "does not match" in (keys.problem("p1", 3, "a" * 64, signature) or "")  # other chain
    assert "not signed" in (keys.problem("p0", 3, "a" * 64, None) or "")
    assert keys.problem("p0", 3, "a" * 64, None, legacy=True) is None  # sealed before signing began
    assert "malformed" in (keys.problem("p0", 3, "a" * 64, "sha1:x") or "")
    stranger = AuditKeys.of(OTHER).sign("p0", 3, "a" * 64)
    assert "does not hold" in (keys.problem("p0", 3, "a" * 64, stranger) or "")
    assert AuditKeys.of(KEY, [OTHER]).problem("p0", 3, "a" * 64, stranger) is None  # a rotated key accepted


def test_a_short_audit_key_is_refused_saying_how_to_make_one() -> None:
    from services.sharing.audit_signing import AuditKeys, WeakKey

    with pytest.raises(WeakKey, match=r"secrets\.token_urlsafe"):
        AuditKeys.of(b"too short")


def test_keyed_verification_names_an_unsigned_record_among_signed_ones() -> None:
    from services.sharing.audit_signing import AuditKeys

    keys = AuditKeys.of(KEY)
    sealed = seal("p0", Head(), [{"n": n} for n in range(3)])
    signed = [Sealed(s.chain, s.seq, s.prev_hash, s.hash, s.body, None, keys.sign(s.chain, s.seq, s.hash))
              for s in sealed]
    assert verify(signed, keys).broken is None
    forged = [*signed[:2], sealed[2]]  # the last appended by someone without the key
    broken = verify(forged, keys).broken
    assert broken is not None and broken.seq == 3 and "not signed" in broken.problem
    assert verify(forged).broken is None  # unkeyed, the chain alone cannot tell


def test_the_topics_anchors_name_a_deleted_chain_a_truncated_tail_and_a_rewrite() -> None:
    from services.sharing.audit_chain import anchored

    topic = {"p0": Head(5, "h5"), "p1": Head(2, "x2"), "triage-app": Head(1, "t1")}
    store = {"p0": Head(6, "h6"), "p1": Head(1, "x1"), "p2": Head(4, "y4")}
    hashes = {("p0", 5): "h5", ("p1", 1): "x1"}
    standing = anchored(store, topic, lambda chain, seq: hashes.get((chain, seq)))
    assert standing.problems == [
        "chain p1: records 2..2 are on the topic but not in the database: its tail was truncated",
        "chain triage-app: 1 records on the topic, none in the database: the chain was deleted"]
    assert standing.behind == ["chain p0: records 6..6 are not on the topic yet",
                               "chain p2: not on the topic yet (4 records)"]
    rewritten = anchored(store, {"p0": Head(5, "h5")}, lambda chain, seq: "other")
    assert rewritten.problems == ["chain p0: record 5 in the database differs from the topic's: the chain was "
                                  "rewritten"]
