"""The threshold decision that closes an enquiry, checked before it is recorded. Pure.

A level on the partnership's continuum of need, an outcome, the Children in Need census factors
identified, the rationale, and who decided. "No factors identified" (21) stands alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.enquiry.catalogue import Catalogue

NO_FACTORS = "21"
RATIONALE_CHARS = 8000


class DecisionRefused(ValueError):
    """A threshold decision that cannot be recorded as given."""


@dataclass(frozen=True)
class ThresholdDecision:
    level: int
    outcome: str
    factors: tuple[str, ...]
    rationale: str


def threshold_decision(catalogue: Catalogue, level: int, outcome: str, factors: Sequence[str],
                       rationale: str) -> ThresholdDecision:
    if level not in catalogue.levels:
        raise DecisionRefused(f"level: one of {', '.join(str(n) for n in catalogue.levels)}")
    if outcome not in catalogue.outcomes:
        raise DecisionRefused(f"outcome: one of {', '.join(catalogue.outcomes)}")
    codes = tuple(dict.fromkeys(f.strip().upper() for f in factors if f.strip()))
    unknown = [c for c in codes if c not in catalogue.factors]
    if unknown:
        raise DecisionRefused(f"not a Children in Need factor code: {', '.join(unknown)}")
    if not codes:
        raise DecisionRefused(f"name the factors identified, or {NO_FACTORS} (no factors identified)")
    if NO_FACTORS in codes and len(codes) > 1:
        raise DecisionRefused(f"{NO_FACTORS} (no factors identified) cannot stand with other factors")
    rationale = rationale.strip()
    if not rationale:
        raise DecisionRefused("write the rationale: what the MASH weighed, from whom")
    if len(rationale) > RATIONALE_CHARS or "\x00" in rationale:
        raise DecisionRefused(f"the rationale is over {RATIONALE_CHARS} characters or holds a NUL")
    return ThresholdDecision(level, outcome, codes, rationale)
