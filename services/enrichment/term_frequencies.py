"""Term-frequency adjustment: an exact agreement on a rare name or postcode says more than on a common one.

Pure. A model's u for EXACT is the chance that two different children agree on a field, averaged
over every value; for one value it is that value's share among children. Two records that both say
SMITH agree as often by chance as SMITH is common; two that say ABERNETHY-QUAYLE almost never do.
The adjustment replaces the average by the value's own share, as Splink's term-frequency adjustment
does: the EXACT weight log2(m/u) becomes log2(m/share), that is log2(u/share) bits more.

The shares come from the deployment's own index (`mash hub match-model frequencies`). Only the
commonest values are kept; a value not in the table is rarer than every value in it, and is taken
to be as common as the rarest kept (the boost it gets is never more than the table supports). No
share counts below `floor`, so a value seen once cannot outvote a date of birth on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TF_FIELDS = ("given", "family", "postcode")
KEEP = 5_000  # values kept per field: the common ones, where the adjustment is largest and most certain
FLOOR = 1e-4  # no value is taken to be rarer than 1 child in 10,000
MAX_BITS = 4.0  # at most this many bits more, or less, than the average exact agreement


@dataclass(frozen=True)
class TermFrequencies:
    shares: Mapping[str, Mapping[str, float]]  # field -> value -> its share among children
    persons: int  # how many children the shares were counted over
    _rarest: Mapping[str, float] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f, table in self.shares.items():
            if f not in TF_FIELDS:
                raise ValueError(f"term frequencies for {f}: only {', '.join(TF_FIELDS)} are adjusted")
            if not all(isinstance(s, int | float) and math.isfinite(s) and 0 < s <= 1 for s in table.values()):
                raise ValueError(f"term frequencies for {f}: every share must be a number in (0, 1]")
        if not isinstance(self.persons, int) or self.persons < 0:
            raise ValueError("term frequencies: persons must be a count")
        rarest = {f: min(t.values()) for f, t in self.shares.items() if t}
        object.__setattr__(self, "_rarest", rarest)  # looked up on every exact agreement scored

    def bits(self, field: str, value: str, u_exact: float) -> float:
        """How many bits to add to `field`'s EXACT weight when both records say `value`."""
        table = self.shares.get(field)
        if not table or not value:
            return 0.0
        share = table.get(value, self._rarest[field])
        return max(-MAX_BITS, min(MAX_BITS, math.log2(u_exact / max(share, FLOOR))))

    def to_json(self) -> dict[str, Any]:
        return {"shares": {f: dict(sorted(t.items())) for f, t in sorted(self.shares.items())},
                "persons": self.persons}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermFrequencies:
        return cls({f: {str(v): float(s) for v, s in t.items()} for f, t in data["shares"].items()},
                   int(data["persons"]))


def term_frequencies(counts: Mapping[str, Mapping[str, int]], persons: int, keep: int = KEEP) -> TermFrequencies:
    """Shares from `counts` (field -> value -> how many children were described with it), the `keep`
    commonest values per field; blank values are no value and are not counted."""
    if persons <= 0:
        raise ValueError("no children to count term frequencies over")
    shares = {}
    for f in TF_FIELDS:
        common = sorted(((n, v) for v, n in counts.get(f, {}).items() if v and n > 0), reverse=True)[:keep]
        if common:
            shares[f] = {v: min(1.0, n / persons) for n, v in common}
    return TermFrequencies(shares, persons)
