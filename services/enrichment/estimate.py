"""Estimating the match model's m and u from unlabelled pairs (expectation-maximisation).

Pure. Nobody labels which pairs of records are the same child; but among the pairs blocking
brings together, matches and non-matches differ in how their fields agree, and EM separates
the two mixtures (Winkler's method, with fields taken as independent given match status).
Pairs are counted by comparison pattern, so a million pairs cost as much as a few hundred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from services.enrichment.comparisons import FIELDS, MISSING
from services.enrichment.match_model import LEVELS, MatchModel

FLOOR = 1e-5  # no level is impossible: a probability of 0 would make a weight infinite
Pattern = tuple[str, ...]


@dataclass(frozen=True)
class Estimate:
    model: MatchModel
    match_share: float  # the share of pairs estimated to be the same child
    pairs: int
    iterations: int


def estimate(patterns: Mapping[Pattern, int], start: MatchModel, iterations: int = 200,
             tolerance: float = 1e-7, fixed_u: Mapping[str, Mapping[str, float]] | None = None) -> Estimate:
    """EM from `start`'s parameters; thresholds and margin are kept from `start`.

    With `fixed_u` (see `u_from_random_pairs`) only m and the match share are estimated: the
    usual practice, since blocked pairs hold too few non-matches to learn u well.
    """
    total = sum(patterns.values())
    if total == 0:
        raise ValueError("no pairs to estimate from")
    m = {f: dict(start.m[f]) for f in FIELDS}
    u = {f: dict(fixed_u[f] if fixed_u and f in fixed_u else start.u[f]) for f in FIELDS}
    share = 0.01
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 - the count is reported
        posterior = {p: _match_probability(p, m, u, share) for p in patterns}
        new_share = sum(n * posterior[p] for p, n in patterns.items()) / total
        new_m = _level_shares(patterns, {p: posterior[p] for p in patterns})
        new_u = u if fixed_u else _level_shares(patterns, {p: 1 - posterior[p] for p in patterns})
        change = abs(new_share - share) + max(abs(new_m[f][lvl] - m[f][lvl]) for f in FIELDS for lvl in LEVELS[f])
        m, u, share = new_m, new_u, new_share
        if change < tolerance:
            break
    model = MatchModel(m, u, start.link_threshold, start.review_threshold, start.margin,
                       source=f"em over {total} pairs" + (", u from random pairs" if fixed_u else ""))
    return Estimate(model, share, total, done)


def u_from_random_pairs(patterns: Mapping[Pattern, int]) -> dict[str, dict[str, float]]:
    """u as the level shares among random pairs of records, nearly all of them different children.
    Not the address line's: its u is its chance among different children of one postcode (see
    `match_model.DEFAULT_U`), which random pairs, almost never in one postcode, cannot show."""
    shares = _level_shares(patterns, dict.fromkeys(patterns, 1.0))
    del shares["address"]
    return shares


def _match_probability(pattern: Pattern, m: dict[str, dict[str, float]], u: dict[str, dict[str, float]],
                       share: float) -> float:
    log_m = math.log(share)
    log_u = math.log(1 - share)
    for f, level in zip(FIELDS, pattern, strict=True):
        if level != MISSING:
            log_m += math.log(m[f][level])
            log_u += math.log(u[f][level])
    top = max(log_m, log_u)
    return math.exp(log_m - top) / (math.exp(log_m - top) + math.exp(log_u - top))


def _level_shares(patterns: Mapping[Pattern, int], weight: Mapping[Pattern, float]) -> dict[str, dict[str, float]]:
    """For each field, the weighted share of each level among pairs where the field was present."""
    shares: dict[str, dict[str, float]] = {}
    for i, f in enumerate(FIELDS):
        mass = {level: 0.0 for level in LEVELS[f]}
        for pattern, n in patterns.items():
            if pattern[i] != MISSING:
                mass[pattern[i]] += n * weight[pattern]
        total = sum(mass.values()) + FLOOR * len(mass)
        shares[f] = {level: min(1 - FLOOR, (value + FLOOR) / total) for level, value in mass.items()}
    return shares
