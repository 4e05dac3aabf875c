"""A sharing decision as the audit trail records it: who saw what of which event, and why.

The fields follow what UK guidance asks a practitioner to record for each decision to share or
not to share: what was shared and withheld, with whom, for what purpose, when, on what lawful
basis, the consent position and any override reason, the reason, and who decided.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.sharing.decide import RoleDecision

HUB_DECIDER = "hub:sharing"


def decision_record(decision: RoleDecision, header: dict[str, Any], policy_version: str, decided_at: datetime,
                    decided_by: str = HUB_DECIDER) -> dict[str, Any]:
    return {
        "event_id": header["event_id"],
        "person_id": header["person_id"],
        "event_type": header["event_type"],
        "source_agency": header["source_agency"],
        "recipient_role": decision.role,
        "outcome": decision.outcome,
        "rule_ids": list(decision.rule_ids),
        "lawful_basis": list(decision.lawful_basis),
        "consent": header["consent"],
        "override_reason": decision.override_reason,
        "fields_shared": list(decision.shared),
        "fields_withheld": list(decision.withheld),
        "purpose": decision.purpose,
        "necessity": decision.necessity,
        "notes": list(decision.notes),
        "policy_version": policy_version,
        "decided_at": decided_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "decided_by": decided_by,
    }


def decision_key(event_id: str, role: str, decided_by: str = HUB_DECIDER) -> str:
    """One automatic decision per (event, role): a redelivered event finds it instead of deciding again."""
    return f"{event_id}/{role}/{decided_by}"
