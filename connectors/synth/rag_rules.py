"""The rating a MASH manager would give a child, from what happened to them: the synthetic feed's RAG truth.

Pure: plain data in, a rating out; no I/O. The rules are written from published threshold guidance
(Working Together to Safeguard Children 2023, NICE CG89, the statutory guidance on children who run
away or go missing, and the continuum-of-need levels local threshold documents use), one rule per
reason, and are explained with their sources in docs/rag-ground-truth.md. They read the facts of an
episode (what happened), never what an agency recorded of it nor the hub's scoring: the truth is
designed first and the scorer calibrated against it, never the other way round.

    RED    immediate risk of significant harm: a strategy discussion the same day (level 4)
    AMBER  likely significant harm or complex needs: a decision within one working day (level 3-4)
    GREEN  needs met by early help or a single agency: a response within 72 hours (level 2)
    None   universal services: nothing for the MASH (level 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

RATINGS = ("GREEN", "AMBER", "RED")  # rising urgency
NON_MOBILE_MONTHS = 6  # babies not yet crawling or pulling to stand (NICE CG89; LSCP bruising protocols)
INFANT_MONTHS = 12
REPEAT_WITHIN = timedelta(days=365)


@dataclass(frozen=True)
class Facts:
    """What happened to the child in one episode: the facts, not any agency's record of them."""

    age_months: int  # the child's age when the episode began
    injury: bool = False  # the child was physically injured
    injury_explained: bool = True  # the account given fits the injury and the child's development
    abuse_disclosed: bool = False  # the child said a parent or carer hurt them
    sexual_abuse: bool = False  # a disclosure or evidence of sexual abuse
    domestic_abuse: bool = False  # a domestic abuse incident in the child's household
    child_present: bool = False  # the child saw or heard it
    da_risk: str = "STANDARD"  # the DASH risk assessment of the incident: STANDARD | MEDIUM | HIGH
    missing: bool = False  # the child went missing from home or care
    exploitation: bool = False  # indicators of criminal or sexual exploitation
    neglect: str = "NONE"  # NONE | LOW (some unmet needs) | SIGNIFICANT (needs unmet across several areas)
    emotional: bool = False  # emotional harm or a wellbeing concern
    self_harm: bool = False
    missing_education: bool = False  # not on a school roll, nor receiving suitable education
    attendance: bool = False  # persistent absence from school


@dataclass(frozen=True)
class Rule:
    id: str
    rag: str
    reason: str
    applies: Callable[[Facts], bool]


# In order of urgency: an episode takes the rating of the first rule that applies.
RULES: tuple[Rule, ...] = (
    Rule("injury-to-non-mobile-baby", "RED", "an injury to a baby not yet mobile",
         lambda f: f.injury and f.age_months < NON_MOBILE_MONTHS),
    Rule("sexual-abuse", "RED", "a disclosure or evidence of sexual abuse", lambda f: f.sexual_abuse),
    Rule("missing-and-exploited", "RED", "missing with indicators of exploitation",
         lambda f: f.missing and f.exploitation),
    Rule("domestic-abuse-child-injured", "RED", "the child was injured in a domestic abuse incident",
         lambda f: f.domestic_abuse and f.injury),
    Rule("injury-disclosed-as-abuse", "RED", "an injury the child says a parent or carer caused",
         lambda f: f.injury and f.abuse_disclosed),
    Rule("unexplained-injury", "AMBER", "an injury the account given does not explain",
         lambda f: f.injury and not f.injury_explained),
    Rule("abuse-disclosed", "AMBER", "the child says a parent or carer hurt them (no injury seen)",
         lambda f: f.abuse_disclosed),
    Rule("high-risk-domestic-abuse", "AMBER", "a high-risk domestic abuse incident the child was present at",
         lambda f: f.domestic_abuse and f.child_present and f.da_risk == "HIGH"),
    Rule("significant-neglect", "AMBER", "neglect of needs across several areas", lambda f: f.neglect == "SIGNIFICANT"),
    Rule("self-harm", "AMBER", "the child harmed themselves", lambda f: f.self_harm),
    Rule("exploitation-indicators", "AMBER", "indicators of criminal or sexual exploitation", lambda f: f.exploitation),
    Rule("domestic-abuse-child-present", "GREEN", "a domestic abuse incident the child was present at",
         lambda f: f.domestic_abuse and f.child_present),
    Rule("low-level-neglect-or-emotional", "GREEN", "some unmet needs or an emotional wellbeing concern",
         lambda f: f.neglect == "LOW" or f.emotional),
    Rule("missing-episode", "GREEN", "a missing episode without indicators of exploitation", lambda f: f.missing),
    Rule("missing-education", "GREEN", "the child is missing education", lambda f: f.missing_education),
)
# What raises a GREEN episode to AMBER: the child's circumstances, not the episode alone.
REPEAT = Rule("repeat-within-12-months", "AMBER", "a further concern within 12 months of an earlier one",
              lambda f: True)
INFANT = Rule("concern-about-a-baby", "AMBER", "a concern about a baby under one",
              lambda f: f.age_months < INFANT_MONTHS)
ALL_RULES = (*RULES, REPEAT, INFANT)


@dataclass(frozen=True)
class Rating:
    rag: str | None  # None: universal services, no MASH alert
    rules: tuple[str, ...]  # the rule ids that gave it (first: the one that set the rating)


def rate_episode(facts: Facts, earlier_concern_within_12_months: bool = False) -> Rating:
    """One episode's rating: the first rule that applies, raised from GREEN to AMBER for a baby or a
    repeat concern."""
    rule = next((r for r in RULES if r.applies(facts)), None)
    if rule is None:
        return Rating(None, ())
    if rule.rag == "GREEN":
        raised = tuple(r.id for r in (INFANT,) if r.applies(facts))
        raised += (REPEAT.id,) if earlier_concern_within_12_months else ()
        if raised:
            return Rating("AMBER", (*raised, rule.id))
    return Rating(rule.rag, (rule.id,))


def rate_child(episodes: Sequence[tuple[datetime, Facts]]) -> Rating:
    """A child's rating over their episodes (when each began, and its facts): the most urgent
    episode's, since one alert holds all of a child's concerns and is never silently lowered."""
    best = Rating(None, ())
    rated_at: list[datetime] = []
    for began, facts in sorted(episodes, key=lambda e: e[0]):
        repeat = any(timedelta(0) <= began - earlier <= REPEAT_WITHIN for earlier in rated_at)
        rating = rate_episode(facts, repeat)
        if rating.rag is None:
            continue
        rated_at.append(began)
        if best.rag is None or RATINGS.index(rating.rag) > RATINGS.index(best.rag):
            best = rating
    return best
