"""Episodes of concern: what happens to a child at risk, and which agencies come to know of it.

An episode's facts are drawn from a few kinds of concern seen in MASH contacts (domestic abuse,
neglect, emotional wellbeing, injuries, going missing, exploitation, sexual abuse, missing
education), weighted so that most concerns need early help or a decision within a day and few an
immediate strategy discussion, as in practice. `rag_rules` rates the facts; this module decides
only what happened and who hears of it. How each agency records what it heard (and gets it wrong)
is `render`'s business.
"""

from __future__ import annotations

import random
from dataclasses import replace

from connectors.synth.rag_rules import NON_MOBILE_MONTHS, Facts

SCHOOL_AGE = (4 * 12, 17 * 12 + 11)  # in months: who a school reports on
# kind of concern -> (weight, youngest age in months)
KINDS = {
    "domestic_abuse": (30, 0),
    "neglect": (18, 0),
    "injury": (12, 0),
    "emotional_wellbeing": (10, 4 * 12),
    "missing": (10, 10 * 12),
    "missing_education": (8, 5 * 12),
    "exploitation": (5, 10 * 12),
    "sexual_abuse": (4, 3 * 12),
}


def school_age(age_months: int) -> bool:
    return SCHOOL_AGE[0] <= age_months <= SCHOOL_AGE[1]


def draw_facts(rng: random.Random, age_months: int) -> tuple[str, Facts]:
    """One episode's kind and facts for a child of this age."""
    kinds = [k for k, (_, youngest) in KINDS.items() if age_months >= youngest]
    kind = rng.choices(kinds, weights=[KINDS[k][0] for k in kinds])[0]
    f = Facts(age_months)
    at_school = school_age(age_months)
    if kind == "domestic_abuse":
        f = replace(f, domestic_abuse=True, child_present=rng.random() < 0.85,
                    da_risk=rng.choices(("STANDARD", "MEDIUM", "HIGH"), weights=(50, 35, 15))[0])
        f = replace(f, injury=f.child_present and rng.random() < 0.08, injury_explained=False)
    elif kind == "neglect":
        f = replace(f, neglect="SIGNIFICANT" if rng.random() < 0.35 else "LOW",
                    attendance=at_school and rng.random() < 0.5)
    elif kind == "injury":
        f = replace(f, injury=True, injury_explained=False,
                    abuse_disclosed=age_months >= 4 * 12 and rng.random() < 0.2)
    elif kind == "emotional_wellbeing":
        f = replace(f, emotional=True, self_harm=age_months >= 11 * 12 and rng.random() < 0.4,
                    attendance=at_school and rng.random() < 0.3)
    elif kind == "missing":
        f = replace(f, missing=True, exploitation=rng.random() < 0.35, attendance=at_school and rng.random() < 0.4)
    elif kind == "missing_education":
        f = replace(f, missing_education=True, attendance=True)
    elif kind == "exploitation":
        f = replace(f, exploitation=True, attendance=at_school and rng.random() < 0.5)
    elif kind == "sexual_abuse":
        f = replace(f, sexual_abuse=True, emotional=rng.random() < 0.5)
    return kind, f


def police_grading(f: Facts) -> str:
    """The risk police would grade the incident, seeing all it shows them (their recording errs, see render)."""
    if (f.sexual_abuse or (f.missing and f.exploitation) or (f.domestic_abuse and (f.injury or f.da_risk == "HIGH"))
            or (f.injury and (f.abuse_disclosed or f.age_months < NON_MOBILE_MONTHS))):
        return "HIGH"
    if f.exploitation or f.missing or f.injury or f.abuse_disclosed or f.da_risk == "MEDIUM":
        return "MEDIUM"
    return "STANDARD"


def reporting_chances(f: Facts) -> dict[str, float]:
    """How likely each agency is to hear of the episode and send a record of it."""
    at_school = school_age(f.age_months)
    police = max(1.0 if f.domestic_abuse else 0.0, 0.95 if f.missing else 0.0, 0.8 if f.sexual_abuse else 0.0,
                 0.7 if f.exploitation else 0.0,
                 0.6 if f.injury and (f.abuse_disclosed or f.age_months < NON_MOBILE_MONTHS) else 0.0,
                 0.25 if f.injury else 0.0, 0.15 if f.neglect == "SIGNIFICANT" else 0.0, 0.03)
    health = max(0.95 if f.injury or f.self_harm else 0.0, 0.4 if f.sexual_abuse else 0.0,
                 0.3 if f.missing and f.exploitation else 0.0, 0.3 if f.neglect != "NONE" else 0.0,
                 0.15 if f.emotional else 0.0, 0.05)
    education = 0.0 if not at_school else max(
        0.95 if f.missing_education else 0.0, 0.8 if f.neglect != "NONE" or f.emotional else 0.0,
        0.6 if f.sexual_abuse or f.exploitation or (f.domestic_abuse and f.child_present) else 0.0,
        0.5 if f.missing or f.attendance else 0.0, 0.4 if f.injury else 0.0, 0.1)
    serious = police_grading(f) == "HIGH" or f.sexual_abuse or f.neglect == "SIGNIFICANT" or f.self_harm
    social_care = 0.7 if serious else 0.45 if f.injury or f.exploitation or f.abuse_disclosed else 0.2
    return {"police": police, "health": health, "education": education, "social_care": social_care}


def reporting_agencies(rng: random.Random, f: Facts) -> list[str]:
    """The agencies that send a record of the episode: at least one (how it came to be known)."""
    chances = reporting_chances(f)
    chosen = [agency for agency, chance in chances.items() if rng.random() < chance]
    return chosen or [max(chances, key=lambda a: chances[a])]
