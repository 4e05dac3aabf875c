"""Sharing decisions as the audit trail records them: who saw what of which event, and why.

The fields follow what UK guidance asks a practitioner to record for each decision to share or
not to share: what was shared and withheld, with whom, for what purpose, when, on what lawful
basis, the consent position and any override reason, the reason, and who decided. One entry
per event holds what is particular to it (event, person, consent, policy version, time, who
decided) and names, by digest, the set of per-role decisions; most events of a kind are decided
alike, so a set is stored once and each entry stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mash.revisions import revision_time
from services.sharing.audit_chain import canonical, digest
from services.sharing.decide import RoleDecision

HUB_DECIDER = "hub:sharing"


@dataclass(frozen=True)
class DecisionSet:
    records: list[dict[str, Any]]  # one per role, as `role_records` made them
    text: str  # canonical JSON
    digest: str  # its SHA-256: the name entries bind it by


def decision_set(decisions: Sequence[RoleDecision]) -> DecisionSet:
    records = role_records(decisions)
    text = canonical(records)
    return DecisionSet(records, text, digest(text))


def decision_entry(decisions: DecisionSet, header: dict[str, Any], policy_version: str,
                   decided_at: datetime, decided_by: str = HUB_DECIDER) -> dict[str, Any]:
    entry = {
        "event_id": header["event_id"],
        "person_id": header["person_id"],
        "event_type": header["event_type"],
        "source_agency": header["source_agency"],
        "consent": header["consent"],
        "policy_version": policy_version,
        "decided_at": decided_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "decided_by": decided_by,
        "decisions_digest": decisions.digest,
    }
    if header.get("revision"):  # which revision of which record: the trail tells its versions apart
        revised = header.get("revised_at")
        entry.update(record_id=header["record_id"], revision=header["revision"], withdrawn=bool(header["withdrawn"]),
                     revised_at=revised.astimezone(UTC).isoformat(timespec="milliseconds")
                     if isinstance(revised, datetime) else revised,
                     # the revision's place in its record's order, as every stage takes it (mash.revisions)
                     revision_order=revision_time(revised, header["received_at"]).isoformat(timespec="milliseconds"))
    return entry


def role_records(decisions: Sequence[RoleDecision]) -> list[dict[str, Any]]:
    return [{
        "recipient_role": d.role,
        "outcome": d.outcome,
        "rule_ids": list(d.rule_ids),
        "lawful_basis": list(d.lawful_basis),
        "override_reason": d.override_reason,
        "fields_shared": list(d.shared),
        "fields_withheld": list(d.withheld),
        "purpose": d.purpose,
        "necessity": d.necessity,
        "notes": list(d.notes),
    } for d in decisions]


def decision_key(event_id: str, decided_by: str = HUB_DECIDER) -> str:
    """One automatic entry per event: a redelivered event finds it instead of deciding again."""
    return f"{event_id}/{decided_by}"


def _order(entry: dict[str, Any]) -> tuple[str, str]:
    return str(entry.get("revision_order") or entry.get("revised_at") or ""), str(entry["event_id"])


def with_its_place(entry: dict[str, Any], earlier: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A revision's entry, naming where it stands among its record's entries recorded before it:
    the revision it supersedes (the latest older one), or, arriving late, the newer one already
    recorded that supersedes it. What was shared under the earlier revision stays in its entry."""
    others = [e for e in earlier if e["event_id"] != entry["event_id"] and e.get("record_id") == entry.get("record_id")]
    newer = [e for e in others if _order(e) > _order(entry)]
    older = [e for e in others if _order(e) < _order(entry)]

    def named(e: dict[str, Any]) -> dict[str, Any]:
        return {"event_id": e["event_id"], "revision": e.get("revision"), "revised_at": e.get("revised_at")}

    if newer:
        return {**entry, "superseded_by": named(max(newer, key=_order))}
    if older:
        return {**entry, "supersedes": named(max(older, key=_order))}
    return entry
