"""The education connector answers the MASH's information requests from the school information
system's database: the same two views it polls (samples/school.sql), searched by UPN, else by name
and date of birth. Found: information held against the attendance and concerns prompts; not found:
a nil return naming the system searched. Parameterised SQL only: the identity comes from outside."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from connectors.sdk.answering import Draft

SYSTEM = "school information system"
# By UPN, else everyone born that day, whose names are then compared in Python: SQL's lower() folds
# ASCII only in SQLite, and a name like Émile must be found as the school spells it.
FIND = text("""
    SELECT forename, surname, concern_kind, attendance_percent, safeguarding_category, logged_at, school_urn
    FROM mash_attendance WHERE (:upn <> '' AND upn = :upn) OR (:upn = '' AND dob = :dob)
    UNION ALL
    SELECT forename, surname, concern_kind, attendance_percent, safeguarding_category, logged_at, school_urn
    FROM mash_safeguarding WHERE (:upn <> '' AND upn = :upn) OR (:upn = '' AND dob = :dob)
    ORDER BY logged_at""")


def answer_from(engine: Engine, request: Mapping[str, Any]) -> Draft | None:
    """What the school system holds about the request's child; None when the request does not give
    enough to search on (a person then answers it in the portal)."""
    child = next((s for s in request["subjects"] if s["relation"] == "child"), None)
    if child is None:
        return None
    identity = child["identity"]
    key = {"upn": (identity.get("subject.upn") or "").strip(),
           "dob": (identity.get("subject.date_of_birth") or "").strip()}
    names = ((identity.get("subject.given_name") or "").strip().casefold(),
             (identity.get("subject.family_name") or "").strip().casefold())
    if not key["upn"] and not (all(names) and key["dob"]):
        return None
    with engine.connect() as db:
        rows = db.execute(FIND, key).mappings().all()
    if not key["upn"]:
        rows = [r for r in rows if ((r["forename"] or "").strip().casefold(),
                                    (r["surname"] or "").strip().casefold()) == names]
    if not rows:
        return Draft("NIL", systems_searched=(SYSTEM,))
    attendance = [r for r in rows if r["concern_kind"] in ("ATTENDANCE_DROP", "CHILD_MISSING_EDUCATION")]
    concerns = [r for r in rows if r["concern_kind"] not in ("ATTENDANCE_DROP", "CHILD_MISSING_EDUCATION")]
    asked = {p["id"] for p in request["prompts"]}
    answers: dict[str, str] = {}
    if attendance and "attendance" in asked:
        answers["attendance"] = "; ".join(
            f"{r['logged_at'][:10]} {r['concern_kind'].replace('_', ' ').lower()}"
            + (f" ({r['attendance_percent']:g}% attendance)" if r["attendance_percent"] is not None else "")
            for r in attendance)
    if concerns and "concerns" in asked:
        answers["concerns"] = "; ".join(
            f"{r['logged_at'][:10]} safeguarding concern" + (f": {r['safeguarding_category'].lower()}"
                                                            if r["safeguarding_category"] else "")
            for r in concerns)
    if not answers:
        return Draft("NIL", systems_searched=(SYSTEM,))
    return Draft("HELD", answers, (SYSTEM,), summary=f"school URN {rows[-1]['school_urn']}")
