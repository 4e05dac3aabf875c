"""Each agency's view of an event: the source record its system would send, mess included."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from connectors.synth.episodes import police_grading
from connectors.synth.feed import Event
from connectors.synth.names import typo, variant
from connectors.synth.population import Child
from connectors.synth.rag_rules import RATINGS, Facts, rate_episode

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


# How agencies' records err: a grading set one level low (police review some and re-grade them:
# the REGRADED revision) or high, a flag the clinician did not tick, a flag ticked on an ordinary
# attendance. Fixed here from what the feeds are like, never fitted to the hub's scoring.
UNDER_GRADED = 0.15
OVER_GRADED = 0.05
FLAG_MISSED = 0.1
FLAG_ON_ORDINARY_ATTENDANCE = 0.01
GRADINGS = ("STANDARD", "MEDIUM", "HIGH")


def police_record_grading(f: Facts, rng: random.Random) -> str:
    grading = GRADINGS.index(police_grading(f))
    roll = rng.random()
    if roll < UNDER_GRADED:
        grading = max(0, grading - 1)
    elif roll < UNDER_GRADED + OVER_GRADED:
        grading = min(2, grading + 1)
    return GRADINGS[grading]


def police_incident(f: Facts, rng: random.Random) -> tuple[str, str, bool]:
    """What police record of an episode: the incident's type, the child's part, whether children were there."""
    victim = f.injury or f.sexual_abuse or f.exploitation or f.abuse_disclosed
    if f.sexual_abuse:
        kind = "SEXUAL_OFFENCE"
    elif f.domestic_abuse:
        kind = "DOMESTIC_ABUSE"
    elif f.missing:
        kind = "EXPLOITATION" if f.exploitation and rng.random() < 0.5 else "MISSING_EPISODE"
    elif f.exploitation:
        kind = "EXPLOITATION"
    else:
        kind = "CHILD_AT_RISK"
    role = "VICTIM" if victim else "PRESENT" if f.child_present else rng.choice(("WITNESS", "OTHER"))
    present = f.child_present if f.domestic_abuse else kind not in ("MISSING_EPISODE", "EXPLOITATION")
    return kind, role, present


def police(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    f = event.facts
    if f is not None:
        kind, role, present = police_incident(f, rng)
        grading = police_record_grading(f, rng)
    else:  # an incident police attended that was no concern for the child: not there, or a bystander
        kind = rng.choice(("ASSAULT", "OTHER", "DOMESTIC_ABUSE"))
        present = kind != "DOMESTIC_ABUSE" and rng.random() < 0.3
        role, grading = rng.choice(("WITNESS", "PRESENT", "OTHER")) if present else "OTHER", "STANDARD"
    return {
        "ppn_id": record_id(event), "person_ref": s["local_id"], "nhs_number": s["nhs_number"],
        "forename": s["given_name"], "surname": s["family_name"], "dob": s["dob"], "sex": s["sex"],
        "address": s["address"], "postcode": s["postcode"], "incident_ref": f"13{event.record_no:08d}",
        "incident_type": kind, "child_role": role, "children_present": present, "risk_grading": grading,
        "occurred_at": event.occurred.isoformat().replace("+00:00", "Z"),
        "summary": "Officers attended; child present." if f is not None else None,
        "consent": rng.choice(("NOT_SOUGHT", "NOT_SAFE_TO_SEEK", "GIVEN")),
    }


INJURIES = ("Head injury", "Fall from height", "Burn", "Fractured wrist", "Bruising")
COMPLAINTS = ("Abdominal pain", "Asthma", "Fever", "Laceration to hand", "Fractured wrist", "Head injury",
              "Fall from height", "Burn")


def health(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    f = event.facts
    if f is None:  # an ordinary attendance; now and then flagged all the same
        complaint = rng.choice(COMPLAINTS)
        concern, pattern = rng.random() < FLAG_ON_ORDINARY_ATTENDANCE, False
    else:
        if f.injury:
            complaint = rng.choice(INJURIES)
        elif f.self_harm:
            complaint = rng.choice(("Self-harm", "Overdose"))
        elif f.sexual_abuse:
            complaint = "Abdominal pain"
        elif f.exploitation or f.missing:
            complaint = rng.choice(("Overdose", "Laceration to hand", "Intoxication"))
        else:
            complaint = rng.choice(("Fever", "Failure to thrive", "Abdominal pain", "Head lice", "Dental pain"))
        concern = rng.random() >= FLAG_MISSED
        pattern = f.injury and not f.injury_explained and rng.random() >= FLAG_MISSED
    # the injury intent: the child (or a witness) says a parent or carer caused it; drawn last, so the
    # rest of the record is as it was before attendances carried it
    alleged = f is not None and f.injury and (f.abuse_disclosed or f.domestic_abuse) and rng.random() >= FLAG_MISSED
    return {
        "attendance_id": record_id(event), "mrn": s["local_id"], "nhs_number": s["nhs_number"],
        "given_name": s["given_name"], "family_name": s["family_name"], "birth_date": s["dob"],
        "gender": {"F": "female", "M": "male"}[s["sex"]], "address": s["address"], "postcode": s["postcode"],
        "site_code": rng.choice(("RR801", "RR813", "RAE01")),
        "arrived_at": event.occurred.isoformat().replace("+00:00", "Z"),
        "presenting_complaint": complaint, "safeguarding_concern": concern, "injury_pattern_concern": pattern,
        "maltreatment_alleged": alleged, "child_protection_flag": False, "discharge_destination": "home",
    }


def tells_of_concern(agency: str, record: dict[str, Any]) -> bool:
    """Whether the record tells the MASH of a concern: every police, school and social care record
    of an episode does; an attendance does only when the clinician flagged it (else it reads as an
    ordinary attendance, and the episode it saw may reach no one)."""
    if agency != "health":
        return True
    return bool(record["safeguarding_concern"] or record["injury_pattern_concern"] or record.get("maltreatment_alleged")
                or record["child_protection_flag"])


def school_concern(f: Facts) -> tuple[str, str | None]:
    """What the school logs of an episode: the kind of concern and, for a safeguarding concern, its category."""
    if f.sexual_abuse:
        return "SAFEGUARDING_CONCERN", "SEXUAL"
    if f.injury or f.abuse_disclosed:
        return "SAFEGUARDING_CONCERN", "PHYSICAL"
    if f.domestic_abuse:
        return "SAFEGUARDING_CONCERN", "DOMESTIC_ABUSE"
    if f.neglect != "NONE":
        return "SAFEGUARDING_CONCERN", "NEGLECT"
    if f.emotional or f.self_harm:
        return "SAFEGUARDING_CONCERN", "EMOTIONAL"
    if f.exploitation:
        return "SAFEGUARDING_CONCERN", "OTHER"
    if f.missing_education or f.missing:
        return "CHILD_MISSING_EDUCATION", None
    return "ATTENDANCE_DROP", None


def education(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    kind, category = school_concern(event.facts) if event.facts is not None else ("ATTENDANCE_DROP", None)
    safeguarding = kind == "SAFEGUARDING_CONCERN"
    dropped = kind == "ATTENDANCE_DROP"
    return {  # the id as the connector's views make it from the table's key
        "concern_id": f"{'SG' if safeguarding else 'ATT'}-{event.record_no}", "pupil_id": s["local_id"],
        "upn": s["upn"], "nhs_number": s["nhs_number"],
        "forename": s["given_name"], "surname": s["family_name"], "dob": s["dob"], "sex": s["sex"],
        "postcode": s["postcode"], "school_urn": f"1{child.household % 90000:05d}",
        "concern_kind": kind,
        "attendance_percent": round(rng.uniform(55, 88), 1) if dropped else None,
        "previous_attendance_percent": round(rng.uniform(90, 99), 1) if dropped else None,
        "safeguarding_category": category,
        "detail": "Logged by the designated safeguarding lead." if safeguarding else None,
        "logged_at": event.occurred.isoformat().replace("+00:00", "Z"),
    }


# How referrers fill in the multi-agency referral form: the level of need is left blank on some, and
# where given it is the referrer's own reading of the threshold document, more often a level too
# high than too low (more contacts are referred than meet the threshold). Fixed here from what
# referral forms are like, never fitted to the hub's scoring.
LEVEL_LEFT_BLANK = 0.3
LEVEL_TOO_HIGH = 0.25
LEVEL_TOO_LOW = 0.1


def referral_category(f: Facts) -> str:
    """The main category of concern a referrer ticks: the gravest thing they know of."""
    if f.sexual_abuse:
        return "SEXUAL"
    if f.injury or f.abuse_disclosed:
        return "PHYSICAL"
    if f.exploitation:
        return "EXPLOITATION"
    if f.domestic_abuse:
        return "DOMESTIC_ABUSE"
    if f.neglect != "NONE":
        return "NEGLECT"
    if f.missing:
        return "MISSING"
    return "EMOTIONAL" if f.emotional or f.self_harm else "OTHER"


def referrer_level(f: Facts, rng: random.Random) -> int | None:
    """The level of need on the referral form: the episode's own level by the threshold rules (no
    history: the referrer sees the one episode), read a level high or low now and then, or blank."""
    if rng.random() < LEVEL_LEFT_BLANK:
        return None
    rag = rate_episode(f).rag
    level = 1 if rag is None else 2 + RATINGS.index(rag)
    roll = rng.random()
    if roll < LEVEL_TOO_HIGH:
        level += 1
    elif roll < LEVEL_TOO_HIGH + LEVEL_TOO_LOW:
        level -= 1
    return min(4, max(1, level))


def social_care(child: Child, event: Event, rng: random.Random) -> dict[str, Any]:
    s = subject(child, event, rng)
    # an episode reaches children's social care as a referral; otherwise a plan or care ending
    f = event.facts
    kind = "REFERRAL" if f is not None else rng.choice(("LOOKED_AFTER_ENDED", "CP_PLAN_ENDED"))
    record = {
        "case_event_id": record_id(event), "lcs_person_id": s["local_id"], "nhs_number": s["nhs_number"],
        "upn": s["upn"], "first_name": s["given_name"], "last_name": s["family_name"], "dob": s["dob"],
        "gender": s["sex"], "address": s["address"], "postcode": s["postcode"],
        "case_reference": f"C-{child.person:07d}",
        "kind": kind, "referral_source": rng.choice(("School", "Police", "Health visitor", "GP", "Neighbour")),
        "plan_category": None,
        "referral_category": referral_category(f) if f is not None else None,
        "level_of_need": None,
        "occurred_at": event.occurred.isoformat().replace("+00:00", "Z"), "detail": None,
        "consent": rng.choice(("GIVEN", "REFUSED", "NOT_SOUGHT")),
    }
    if f is not None:  # drawn last, so the rest of the record is as it was before forms had a level
        record["level_of_need"] = referrer_level(f, rng)
    return record


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
