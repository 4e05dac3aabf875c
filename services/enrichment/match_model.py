"""The Fellegi-Sunter match model: weights per comparison level, thresholds, and the decision.

Pure. For each field and level, m is the chance of that level when two records are the same
child and u when they are different children; the level's weight is log2(m/u), and a pair's
score is the sum over fields. Above the link threshold (and clearly ahead of any other
candidate) the event is linked; between the thresholds it is held for a person to confirm;
below, it starts a new person. A link is never made automatically below the link threshold.
The parameters can be estimated from data (`estimate.py`; `load_model` reads a saved one); the
version is a hash of them, and every decision records the version that made it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mash.errors import UnusableFile
from services.enrichment.comparisons import FIELDS, MISSING, Profile, compare, identifiers_conflict, sibling_evidence
from services.enrichment.term_frequencies import TF_FIELDS, TermFrequencies

LEVELS: dict[str, tuple[str, ...]] = {
    "given": ("EXACT", "NICKNAME", "FUZZY", "INITIAL", "DISAGREE"),
    "family": ("EXACT", "FUZZY", "PHONETIC", "DISAGREE"),
    "dob": ("EXACT", "SWAPPED", "TYPO", "YEAR", "ONE_PART", "DISAGREE"),
    "sex": ("AGREE", "DISAGREE"),
    "postcode": ("EXACT", "SECTOR", "TYPO", "DISTRICT", "DISAGREE"),
    "address": ("EXACT", "FUZZY", "TOKENS", "DISAGREE"),
}
LINK, REVIEW, NEW = "LINK", "REVIEW", "NEW"
SIBLING_MARGIN = 1.0  # a sibling's profile scores at least this far below the review threshold

# Starting values from what agencies' records are like: m from how often a field is keyed
# differently for the same child, u from how common a value is among different children.
DEFAULT_M = {
    "given": {"EXACT": 0.88, "NICKNAME": 0.05, "FUZZY": 0.04, "INITIAL": 0.01, "DISAGREE": 0.02},
    "family": {"EXACT": 0.95, "FUZZY": 0.03, "PHONETIC": 0.005, "DISAGREE": 0.015},
    "dob": {"EXACT": 0.95, "SWAPPED": 0.01, "TYPO": 0.015, "YEAR": 0.005, "ONE_PART": 0.01, "DISAGREE": 0.01},
    "sex": {"AGREE": 0.98, "DISAGREE": 0.02},
    "postcode": {"EXACT": 0.80, "SECTOR": 0.03, "TYPO": 0.02, "DISTRICT": 0.05, "DISAGREE": 0.10},
    "address": {"EXACT": 0.75, "FUZZY": 0.08, "TOKENS": 0.07, "DISAGREE": 0.10},
}
# u for the address line is its chance among different children *in the same postcode* (a few
# dozen homes), not among all: the two agree together, and counting the home twice as if they
# were independent would let a household's date of birth and home outvote two different names.
DEFAULT_U = {
    "given": {"EXACT": 0.02, "NICKNAME": 0.002, "FUZZY": 0.005, "INITIAL": 0.003, "DISAGREE": 0.97},
    "family": {"EXACT": 0.02, "FUZZY": 0.003, "PHONETIC": 0.01, "DISAGREE": 0.967},
    "dob": {"EXACT": 0.0003, "SWAPPED": 0.00002, "TYPO": 0.004, "YEAR": 0.0004, "ONE_PART": 0.018,
            "DISAGREE": 0.97728},
    "sex": {"AGREE": 0.5, "DISAGREE": 0.5},
    "postcode": {"EXACT": 0.0005, "SECTOR": 0.003, "TYPO": 0.0025, "DISTRICT": 0.057, "DISAGREE": 0.937},
    "address": {"EXACT": 0.04, "FUZZY": 0.01, "TOKENS": 0.03, "DISAGREE": 0.92},
}


@dataclass(frozen=True)
class MatchModel:
    m: Mapping[str, Mapping[str, float]]
    u: Mapping[str, Mapping[str, float]]
    link_threshold: float = 22.0
    review_threshold: float = 12.0
    margin: float = 6.0  # how far the best candidate must lead the next to be linked
    source: str = "default"
    tf: TermFrequencies | None = None  # shares of names and postcodes in the deployment's index
    weights: dict[str, dict[str, float]] = field(init=False, compare=False, repr=False)
    below_exact: dict[str, float] = field(init=False, compare=False, repr=False)  # each field's next level down
    version: str = field(init=False, compare=False)  # a hash of the parameters

    def __post_init__(self) -> None:
        check_parameters(self.m, self.u)
        limits = (self.link_threshold, self.review_threshold, self.margin)
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in limits) or self.margin < 0:
            raise ValueError("thresholds must be numbers and the margin a number of at least 0 "
                             "(a negative or NaN margin would link an event two candidates fit equally)")
        if self.review_threshold > self.link_threshold:
            raise ValueError("the review threshold must not be above the link threshold")
        weights = {f: {lvl: math.log2(self.m[f][lvl] / self.u[f][lvl]) for lvl in LEVELS[f]} for f in FIELDS}
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "below_exact", {f: max(w for level, w in weights[f].items() if level != "EXACT")
                                                 for f in FIELDS})
        version = hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]
        object.__setattr__(self, "version", version)

    def score(self, vector: Sequence[str], event: Profile | None = None, known: Profile | None = None) -> float:
        """The pair's weight of evidence. With term frequencies and both profiles, an exact agreement
        on a name or postcode weighs by how common that value is (`term_frequencies`): less if
        common, never below the field's next level (an exact match must not lose to a slip); more
        if rare only when the dates of birth agree (rarity tells apart children born the same day,
        not a father from his son). Names matched across their boxes (given keyed as family) take
        the average weight: the value was not written in the field its share was counted for."""
        total = sum(self.weights[f][level] for f, level in zip(FIELDS, vector, strict=True) if level != MISSING)
        if self.tf is None or event is None or known is None:
            return total
        same_day = vector[2] in ("EXACT", "SWAPPED")
        for i, f in enumerate(FIELDS):
            value = getattr(event, f) if f in TF_FIELDS and vector[i] == "EXACT" else ""
            if value and value == getattr(known, f):
                bits = self.tf.bits(f, value, self.u[f]["EXACT"])
                exact = self.weights[f]["EXACT"]
                total += max(self.below_exact[f], exact + (bits if same_day else min(bits, 0.0))) - exact
        return total

    def classify(self, score: float) -> str:
        if score >= self.link_threshold:
            return LINK
        return REVIEW if score >= self.review_threshold else NEW

    def to_json(self) -> dict[str, Any]:
        saved = {"m": self.m, "u": self.u, "link_threshold": self.link_threshold,
                 "review_threshold": self.review_threshold, "margin": self.margin, "source": self.source}
        return saved if self.tf is None else {**saved, "tf": self.tf.to_json()}

    def with_frequencies(self, tf: TermFrequencies, source: str) -> MatchModel:
        return MatchModel(self.m, self.u, self.link_threshold, self.review_threshold, self.margin, source, tf)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MatchModel:
        """A saved model; one saved before a field was compared takes that field's default weights."""
        fields = {k: data[k] for k in ("m", "u", "link_threshold", "review_threshold", "margin", "source")}
        for name, defaults in (("m", DEFAULT_M), ("u", DEFAULT_U)):
            fields[name] = {**{f: defaults[f] for f in FIELDS if f not in fields[name]}, **fields[name]}
        tf = TermFrequencies.from_json(data["tf"]) if data.get("tf") is not None else None
        return cls(**fields, tf=tf)


def check_parameters(m: Mapping[str, Mapping[str, float]], u: Mapping[str, Mapping[str, float]]) -> None:
    """Every level of every field, each a probability strictly between 0 and 1."""
    for name, table in (("m", m), ("u", u)):
        for f in FIELDS:
            levels = table.get(f, {})
            if set(levels) != set(LEVELS[f]):
                raise ValueError(f"{name}[{f}] must give exactly the levels {', '.join(LEVELS[f])}")
            if not all(0 < p < 1 for p in levels.values()):
                raise ValueError(f"{name}[{f}]: every probability must be strictly between 0 and 1")


DEFAULT_MODEL = MatchModel(DEFAULT_M, DEFAULT_U)


def load_model(path: Path | None) -> MatchModel:
    """The model in a file written by `mash hub match-model estimate`, or the default."""
    if path is None:
        return DEFAULT_MODEL
    try:
        return MatchModel.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
        raise UnusableFile(f"{path}: not a usable match model ({exc}); re-run `mash hub match-model estimate` "
                         "or unset MASH_MATCH_MODEL") from exc


@dataclass(frozen=True)
class Candidate:
    """One person the blocking keys found, with every profile the index has seen for them."""

    person_id: str
    profiles: tuple[Profile, ...]


@dataclass(frozen=True)
class MatchResult:
    outcome: str  # LINK | REVIEW | NEW
    person_id: str | None  # the best candidate, if any scored
    score: float | None
    evidence: dict[str, str]  # field -> level, for the best candidate
    runner_up: float | None


def at_most_review(vector: Sequence[str]) -> bool:
    """Pairs a person must confirm however much the names say (and the rarer a name, the more they
    say with term frequencies): no name to go on; a date of birth that disagrees outright (a father
    and son of one name); another town with no address line alike (a namesake born the same day
    elsewhere, or the child moved: a person can tell which). None of these reaches the link threshold
    on the shipped weights; the rule keeps it so for learned and frequency-adjusted ones."""
    given, family, dob, _, postcode, address = vector
    return (given == family == MISSING or dob == "DISAGREE"
            or (postcode == "DISAGREE" and address not in ("EXACT", "FUZZY")))


def best_match(model: MatchModel, event: Profile, candidates: Sequence[Candidate]) -> MatchResult:
    """Score every candidate on its best-matching profile and decide.

    A candidate whose valid NHS number or UPN differs from the event's is a different child and
    is not scored. A profile that reads as a brother or sister (a different given name under the
    same family name: `sibling_evidence`) scores no higher than just under the review threshold,
    so twins and siblings are never linked nor held for review on it, however much else agrees. A
    profile with neither name to compare is at most held for review: a date and an address alone
    are a household's, not a child's (see `at_most_review` for the others).
    Two candidates both close to the top is ambiguity: held for review.
    """
    scored: list[tuple[float, str, tuple[str, ...]]] = []
    for candidate in candidates:
        best: tuple[float, tuple[str, ...]] | None = None
        for profile in candidate.profiles:
            if identifiers_conflict(event, profile):
                best = None
                break
            vector: tuple[str, ...] = compare(event, profile)
            score = model.score(vector, event, profile)
            if sibling_evidence(vector):
                score = min(score, model.review_threshold - SIBLING_MARGIN)
            elif at_most_review(vector):
                score = min(score, model.link_threshold - SIBLING_MARGIN)
            if best is None or score > best[0]:
                best = (score, vector)
        if best is not None:
            scored.append((best[0], candidate.person_id, best[1]))
    if not scored:
        return MatchResult(NEW, None, None, {}, None)
    scored.sort(key=lambda s: (-s[0], s[1]))
    top_score, person_id, vector = scored[0]
    runner_up = scored[1][0] if len(scored) > 1 else None
    outcome = model.classify(top_score)
    if outcome == LINK and runner_up is not None and top_score - runner_up < model.margin:
        outcome = REVIEW
    return MatchResult(outcome, person_id, round(top_score, 3), dict(zip(FIELDS, vector, strict=True)),
                       None if runner_up is None else round(runner_up, 3))
