"""The context triage needs with each event: what the hub already knows of the child.

Pure. Counts are relative to when the event occurred, not to the clock, so a late-arriving or
replayed event sees the same history it would have seen on time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

AGENCIES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
WINDOWS_DAYS = (30, 90, 365)
DAY_MS = 86_400_000
MAX_HOUSEHOLD = 20


@dataclass(frozen=True)
class Status:
    open_social_care: bool = False
    child_protection_plan: bool = False
    looked_after: bool = False

    def updated(self, change: dict[str, bool]) -> Status:
        return Status(**{**self.__dict__, **change})


def status_change(schema_name: str, payload: dict[str, Any]) -> dict[str, bool]:
    """What an event says about the child's social care status, if anything."""
    if schema_name == "uk.mash.social_care.SocialCareEvent":
        return {
            "REFERRAL": {"open_social_care": True},
            "CP_PLAN_STARTED": {"open_social_care": True, "child_protection_plan": True},
            "CP_PLAN_ENDED": {"child_protection_plan": False},
            "LOOKED_AFTER_STARTED": {"open_social_care": True, "looked_after": True},
            "LOOKED_AFTER_ENDED": {"looked_after": False},
        }.get(payload.get("kind", ""), {})
    if schema_name == "uk.mash.health.EmergencyAttendance" and payload.get("child_protection_flag"):
        return {"child_protection_plan": True}  # the CP-IS flag: a plan is in place
    return {}


def prior_events(history: Iterable[tuple[str, int]], occurred_ms: int) -> list[dict[str, Any]]:
    """Per agency, how many earlier events the child had in the last 30, 90 and 365 days."""
    counts = {agency: [0, 0, 0] for agency in AGENCIES}
    for agency, when in history:
        age = occurred_ms - when
        if age <= 0 or agency not in counts:
            continue
        for i, days in enumerate(WINDOWS_DAYS):
            if age <= days * DAY_MS:
                counts[agency][i] += 1
    return [{"agency": agency, "last_30_days": c[0], "last_90_days": c[1], "last_365_days": c[2]}
            for agency, c in counts.items() if c[2]]


def person_context(status: Status, history: Iterable[tuple[str, int]], occurred_ms: int,
                   household: Iterable[str]) -> dict[str, Any]:
    return {
        "open_social_care": status.open_social_care,
        "child_protection_plan": status.child_protection_plan,
        "looked_after": status.looked_after,
        "prior_events": prior_events(history, occurred_ms),
        "household_person_ids": sorted(household)[:MAX_HOUSEHOLD],
    }


def address_key(subject: dict[str, Any]) -> str:
    """The same home however it was typed: letters and digits of the first line, and the postcode."""
    line = "".join(ch for ch in (subject.get("address_line") or "").upper() if ch.isalnum())
    postcode = "".join(ch for ch in (subject.get("postcode") or "").upper() if ch.isalnum())
    return f"{line}|{postcode}"[:160] if line and postcode else ""
