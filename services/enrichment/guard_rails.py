"""Whether a learned match model may replace the one in use: the guard rails of estimation.

Pure. EM finds the weights that best explain a partnership's own blocked pairs, and those are
dominated by households: it can learn that a different given name is common among matches and
start joining twins, with nothing in its likelihood to say so. A learned model is therefore
accepted only if it decides every labelled case as expected (`match_cases`) and would hold no
more of the index's own events for review than the bound, or than the model in use does (a person
must answer each one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.enrichment.comparisons import Profile
from services.enrichment.match_cases import CaseResult, MatchCase, run_cases
from services.enrichment.match_model import REVIEW, Candidate, MatchModel, best_match

MAX_REVIEW_RATE = 0.02  # of events held for a person: the bound, and what a MASH can answer


@dataclass(frozen=True)
class Described:
    """One way the index has described a child, as an event arriving again would be scored."""

    profile: Profile
    events: int  # how many events described the child this way
    candidates: list[Candidate]  # the persons sharing a blocking key with it, with their descriptions there


@dataclass(frozen=True)
class Verdict:
    cases: list[CaseResult]
    review_rate: float  # the learned model: the share of the sampled descriptions' events it would hold
    review_rate_in_use: float  # the model in use, over the same
    max_review_rate: float

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.cases if not r.passed]

    @property
    def accepted(self) -> bool:
        """Every case as expected, and reviews within the bound or no more than the model in use holds."""
        return not self.failed and self.review_rate <= max(self.max_review_rate, self.review_rate_in_use)


def judge(learned: MatchModel, in_use: MatchModel, cases: Sequence[MatchCase],
          described: Sequence[Described], max_review_rate: float = MAX_REVIEW_RATE) -> Verdict:
    return Verdict(run_cases(learned, tuple(cases)), review_rate(learned, described),
                   review_rate(in_use, described), max_review_rate)


def review_rate(model: MatchModel, described: Sequence[Described]) -> float:
    """The share of events that would be held for review if they arrived again with no identifier:
    each description scored against the persons it shares a blocking key with, exactly as the
    index scores an event, and counted as often as events described the child that way. An upper
    bound on the live rate, where most events carry an NHS number or UPN and are never scored."""
    total = sum(d.events for d in described)
    if not total:
        return 0.0
    held = sum(d.events for d in described if best_match(model, d.profile, d.candidates).outcome == REVIEW)
    return held / total
