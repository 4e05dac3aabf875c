"""`mash audit explain`: why each role saw what it saw of one event, in plain English."""

from __future__ import annotations

from typing import Any

from services.sharing.vocabulary import LAWFUL_BASES, ROLES

_OUTCOMES = {"SHARE": "saw the whole event", "SHARE_FIELDS": "saw part of the event",
             "WITHHOLD": "saw nothing of the event"}
_CONSENT = {"GIVEN": "consent was given", "REFUSED": "consent was refused", "NOT_SOUGHT": "consent was not sought",
            "NOT_SAFE_TO_SEEK": "consent was not sought because it was not safe to seek it",
            "UNKNOWN": "the source did not record consent"}


def explain(entries: list[dict[str, Any]]) -> str:
    """Each recorded entry for the event (the hub's, then any later release by a person), role by role."""
    if not entries:
        return "No sharing decisions are recorded for this event."
    first = entries[0]
    lines = [f"Event {first['event_id']} ({first['event_type']}, from {first['source_agency'].lower()}): "
             f"{_CONSENT.get(first['consent'], first['consent'])}."]
    lines.extend(_revision(first))
    for entry in entries:
        for decision in entry["decisions"]:
            lines.append("")
            lines.extend(_one(entry, decision))
    return "\n".join(lines)


def _revision(entry: dict[str, Any]) -> list[str]:
    """Which revision of the agency record this was, and where it stands among the others."""
    if not entry.get("record_id"):
        return []
    what = "a withdrawal (entered in error)" if entry.get("withdrawn") else f"revision {entry.get('revision')}"
    lines = [f"It is {what} of record {entry['record_id']}, revised at {entry.get('revised_at')}."]
    if "supersedes" in entry:
        lines.append(f"It supersedes event {entry['supersedes']['event_id']} (revised at "
                     f"{entry['supersedes']['revised_at']}); what was shared under that one stays in its entry.")
    if "superseded_by" in entry:
        lines.append(f"It arrived after a newer revision, event {entry['superseded_by']['event_id']} (revised at "
                     f"{entry['superseded_by']['revised_at']}), so the hub ignored it beyond this record.")
    return lines


def _one(entry: dict[str, Any], record: dict[str, Any]) -> list[str]:
    role = ROLES.get(record["recipient_role"], record["recipient_role"])
    who = "the hub, applying the sharing policy" if entry["decided_by"] == "hub:sharing" else entry["decided_by"]
    lines = [f"The {role} {_OUTCOMES.get(record['outcome'], record['outcome'])}: decided by {who} at "
             f"{entry['decided_at']} under policy version {entry['policy_version'][:12]}."]
    if record["rule_ids"]:
        lines.append(f"  Rules that applied: {', '.join(record['rule_ids'])}.")
    else:
        lines.append("  No rule applied to this role for this event, so by default nothing was shared.")
    if record["fields_shared"]:
        lines.append(f"  Shared ({len(record['fields_shared'])}): {', '.join(record['fields_shared'])}.")
        lines.append(f"  Purpose: {record['purpose']}.")
    if record["fields_withheld"]:
        lines.append(f"  Withheld ({len(record['fields_withheld'])}): {', '.join(record['fields_withheld'])}.")
    if record["lawful_basis"]:
        bases = "; ".join(LAWFUL_BASES[b].text if b in LAWFUL_BASES else b for b in record["lawful_basis"])
        lines.append(f"  Lawful basis: {bases}.")
    if record["rule_ids"]:
        lines.append(f"  Why it was necessary: {record['necessity']}.")
    if record.get("override_reason"):
        lines.append(f"  Consent was refused and overridden because: {record['override_reason'].strip()}.")
    lines.extend(f"  Note: {note}." for note in record.get("notes", ()))
    return lines
