"""The closed lists a sharing policy is written in: roles, lawful bases, consent states.

Closed on purpose: a policy that names a role or a legal basis outside these lists is a typo or
a new legal question, and either way it must fail at load, not share by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: dict[str, str] = {
    "mash_social_worker": "MASH social worker",
    "mash_police_officer": "MASH police officer",
    "mash_health_practitioner": "MASH health practitioner",
    "education_safeguarding_lead": "education safeguarding lead",
    "triage_manager": "triage manager",
}
HEALTH_ROLES = frozenset({"mash_health_practitioner"})

AGENCIES = ("POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE")
SENSITIVITIES = ("STANDARD", "SPECIAL_CATEGORY")
CONSENT_STATES = ("GIVEN", "REFUSED", "NOT_SOUGHT", "NOT_SAFE_TO_SEEK", "UNKNOWN")
CONTEXT_FLAGS = ("open_social_care", "child_protection_plan", "looked_after")
DECISIONS = ("share", "share_fields", "withhold")


@dataclass(frozen=True)
class LawfulBasis:
    text: str
    article_9: bool = False  # a condition for special category (health) data


LAWFUL_BASES: dict[str, LawfulBasis] = {
    "UK_GDPR_6_1_C": LawfulBasis("UK GDPR Art 6(1)(c): legal obligation"),
    "UK_GDPR_6_1_D": LawfulBasis("UK GDPR Art 6(1)(d): vital interests"),
    "UK_GDPR_6_1_E": LawfulBasis("UK GDPR Art 6(1)(e): public task"),
    "UK_GDPR_9_2_G_DPA_SCH1_P18": LawfulBasis(
        "UK GDPR Art 9(2)(g) with DPA 2018 Schedule 1 paragraph 18: safeguarding of children and of "
        "individuals at risk", article_9=True),
    "UK_GDPR_9_2_H": LawfulBasis("UK GDPR Art 9(2)(h) with DPA 2018 Schedule 1 paragraph 2: health or "
                                 "social care", article_9=True),
    "CHILDREN_ACT_2004_S10": LawfulBasis("Children Act 2004 s10: co-operation to improve well-being"),
    "CHILDREN_ACT_2004_S11": LawfulBasis("Children Act 2004 s11: duty to safeguard and promote welfare"),
    "CHILDREN_ACT_1989_S17": LawfulBasis("Children Act 1989 s17: children in need"),
    "CHILDREN_ACT_1989_S47": LawfulBasis("Children Act 1989 s47: duty to investigate significant harm"),
    "CRIME_AND_DISORDER_ACT_1998_S115": LawfulBasis("Crime and Disorder Act 1998 s115: disclosure to "
                                                    "relevant authorities"),
    "UK_GDPR_5_1_C": LawfulBasis("UK GDPR Art 5(1)(c): data minimisation (grounds to withhold)"),
}
