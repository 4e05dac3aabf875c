"""Each agency's view of an event: the source record its system would send, mess included."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from connectors.synth.feed import Event
from connectors.synth.names import typo, variant
from connectors.synth.population import Child

# How often each agency knows a child's strong identifiers (the rest are missing).
KNOWS_NHS = {"police": 0.35, "health": 0.97, "education": 0.25, "social_care": 0.9}
KNOWS_UPN = {"police": 0.0, "health": 0.0, "education": 0.97, "social_care": 0.6}
LOCAL_ID = {"police": "WYP-{:07d}", "health": "RR8{:07d}", "education": "P{:07d}", "social_care": "LCS{:07d}"}
RECORD_ID = {"police": "PPN-{:08d}", "health": "ED{:09d}", "social_care": "LCS-E{:08d}"}
ID_FIELD = {"police": "ppn_id", "health": "attendance_id", "education": "concern_id", "social_care": "case_event_id"}


def rng_for(seed: int, event: Event) -> random.Random:
    """The same record renders the same way, resubmissions included, whatever the order."""
    return random.Random(f"{seed}/{event.agency}/{event.record_no}")


def subject(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    stale = timedelta(days=45 if rng.random() < 0.1 else 0)  # an agency slow to hear of a move
    line, postcode = child.address_on(event.occurred.date() - stale)
    dob = child.dob
    if rng.random() < 0.01 and dob.day <= 12 and dob.day != dob.month:
        dob = date(dob.year, dob.day, dob.month)  # day and month keyed the wrong way round
    return {
        "local_id": LOCAL_ID[event.agency].format(child.person),
        "nhs_number": child.nhs if rng.random() < KNOWS_NHS[event.agency] else None,
        "upn": child.upn if child.upn and rng.random() < KNOWS_UPN[event.agency] else None,
        "given_name": variant(child.given, rng) if rng.random() < 0.08 else child.given,
        "family_name": typo(child.family, rng) if rng.random() < 0.02 else child.family,
        "dob": dob.isoformat(),
        "sex": child.sex,
        "address": line,
        "postcode": postcode,
    }


def record_id(event: Event) -> str:
    return RECORD_ID[event.agency].format(event.record_no)


def police(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    kind = rng.choice(("DOMESTIC_ABUSE", "CHILD_AT_RISK", "EXPLOITATION")) if event.concerning else \
        rng.choice(("ASSAULT", "MISSING_EPISODE", "OTHER", "DOMESTIC_ABUSE"))
    return {
        "ppn_id": record_id(event), "person_ref": s["local_id"], "nhs_number": s["nhs_number"],
        "forename": s["given_name"], "surname": s["family_name"], "dob": s["dob"], "sex": s["sex"],
        "address": s["address"], "postcode": s["postcode"], "incident_ref": f"13{event.record_no:08d}",
        "incident_type": kind, "child_role": rng.choice(("VICTIM", "WITNESS", "PRESENT")),
        "children_present": event.concerning or rng.random() < 0.3,
        "risk_grading": rng.choice(("MEDIUM", "HIGH")) if event.concerning else "STANDARD",
        "occurred_at": event.occurred.isoformat().replace("+00:00", "Z"),
        "summary": "Officers attended; child present." if event.concerning else None,
        "consent": rng.choice(("NOT_SOUGHT", "NOT_SAFE_TO_SEEK", "GIVEN")),
    }


COMPLAINTS = ("Head injury", "Fall from height", "Burn", "Fractured wrist", "Abdominal pain", "Asthma",
              "Overdose", "Self-harm", "Fever", "Laceration to hand")


def health(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    return {
        "attendance_id": record_id(event), "mrn": s["local_id"], "nhs_number": s["nhs_number"],
        "given_name": s["given_name"], "family_name": s["family_name"], "birth_date": s["dob"],
        "gender": {"F": "female", "M": "male"}[s["sex"]], "address": s["address"], "postcode": s["postcode"],
        "site_code": rng.choice(("RR801", "RR813", "RAE01")),
        "arrived_at": event.occurred.isoformat().replace("+00:00", "Z"),
        "presenting_complaint": rng.choice(COMPLAINTS[:4] if event.concerning else COMPLAINTS),
        "safeguarding_concern": event.concerning, "injury_pattern_concern": event.concerning and rng.random() < 0.4,
        "child_protection_flag": False, "discharge_destination": "home",
    }


def education(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    safeguarding = event.concerning or rng.random() < 0.2
    kind = "SAFEGUARDING_CONCERN" if safeguarding else rng.choice(("ATTENDANCE_DROP", "CHILD_MISSING_EDUCATION"))
    category = rng.choice(("NEGLECT", "EMOTIONAL", "PHYSICAL", "DOMESTIC_ABUSE")) if safeguarding else None
    return {  # the id as the connector's views make it from the table's key
        "concern_id": f"{'SG' if safeguarding else 'ATT'}-{event.record_no}", "pupil_id": s["local_id"],
        "upn": s["upn"], "nhs_number": s["nhs_number"],
        "forename": s["given_name"], "surname": s["family_name"], "dob": s["dob"], "sex": s["sex"],
        "postcode": s["postcode"], "school_urn": f"1{child.household % 90000:05d}",
        "concern_kind": kind,
        "attendance_percent": None if safeguarding else round(rng.uniform(55, 88), 1),
        "previous_attendance_percent": None if safeguarding else round(rng.uniform(90, 99), 1),
        "safeguarding_category": category,
        "detail": "Logged by the designated safeguarding lead." if safeguarding else None,
        "logged_at": event.occurred.isoformat().replace("+00:00", "Z"),
    }


def social_care(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    kind = rng.choice(("REFERRAL", "REFERRAL", "CP_PLAN_STARTED")) if event.concerning else \
        rng.choice(("REFERRAL", "LOOKED_AFTER_ENDED", "CP_PLAN_ENDED"))
    return {
        "case_event_id": record_id(event), "lcs_person_id": s["local_id"], "nhs_number": s["nhs_number"],
        "upn": s["upn"], "first_name": s["given_name"], "last_name": s["family_name"], "dob": s["dob"],
        "gender": s["sex"], "address": s["address"], "postcode": s["postcode"],
        "case_reference": f"C-{child.person:07d}",
        "kind": kind, "referral_source": rng.choice(("School", "Police", "Health visitor", "GP", "Neighbour")),
        "plan_category": rng.choice(("neglect", "emotional", "physical")) if kind == "CP_PLAN_STARTED" else None,
        "occurred_at": event.occurred.isoformat().replace("+00:00", "Z"), "detail": None,
        "consent": rng.choice(("GIVEN", "REFUSED", "NOT_SOUGHT")),
    }


RENDERERS = {"police": police, "health": health, "education": education, "social_care": social_care}


# The share of events that carry no valid NHS number or UPN with nothing stripped (measured over
# the feed's agency mix: police 66%, education 18%, social care 5%, health 3%).
NATURAL_MISSING_SHARE = 0.159


def without_strong_identifiers(share: float) -> float:
    """The chance to strip any record of its NHS number and UPN so that about `share` of all
    events carry neither."""
    return max(0.0, (share - NATURAL_MISSING_SHARE) / (1 - NATURAL_MISSING_SHARE))


def strip_identifiers(record: dict[str, Any], seed: int, event: Event, chance: float) -> None:
    """Remove the record's strong identifiers with the given chance (a resubmission alike)."""
    if chance and random.Random(f"{seed}/strip/{event.agency}/{event.record_no}").random() < chance:
        for name in ("nhs_number", "upn"):
            if name in record:
                record[name] = None
