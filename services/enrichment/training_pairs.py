"""Unlabelled pairs for estimating the match model, drawn from the person index itself.

The profiles that share a blocking key are the pairs the matcher will meet: some the same child
described twice, most not. Their comparison patterns, counted, are what EM needs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date
from itertools import combinations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mash.models import PersonBlockKey, PersonProfile
from services.enrichment.comparisons import Profile, compare
from services.enrichment.estimate import Pattern
from services.enrichment.guard_rails import Described
from services.enrichment.match_model import Candidate
from services.enrichment.term_frequencies import TF_FIELDS

Member = tuple[str, Profile, int]  # person id, one description of them, how many events described them so

MAX_PER_KEY = 50  # as in matching: a key shared by more is too common to compare on


def pair_patterns(session: Session, max_keys: int = 20_000) -> Counter[Pattern]:
    """Comparison patterns of the pairs of events filed under up to `max_keys` blocking keys.

    Profiles are stored once with the number of events that described the child that way, so a
    pair of profiles stands for every pair of their events, and a profile seen n times for the
    n(n-1)/2 pairs of identical records: the same child described the same way, which is most of
    what a match looks like.
    """
    seen: set[tuple[tuple[str, Profile], ...]] = set()
    patterns: Counter[Pattern] = Counter()
    for group in _blocks(session, max_keys):
        for person_id, profile, n in group:
            if n > 1 and ((person_id, profile),) not in seen:
                seen.add(((person_id, profile),))
                patterns[compare(profile, profile)] += n * (n - 1) // 2
        for (pa, a, na), (pb, b, nb) in combinations(group, 2):
            pair = tuple(sorted(((pa, a), (pb, b)), key=repr))
            if pair not in seen:
                seen.add(pair)
                patterns[compare(a, b)] += na * nb
    return patterns


def blocked_candidates(session: Session, max_keys: int = 20_000) -> list[Described]:
    """Each description filed under up to `max_keys` sampled keys, with the persons it would be
    scored against on arrival: every person sharing one of those keys, with their descriptions
    there (its own person's other descriptions included, the identical one left out)."""
    rivals: dict[tuple[str, Profile], dict[str, set[Profile]]] = defaultdict(lambda: defaultdict(set))
    events: dict[tuple[str, Profile], int] = {}
    for group in _blocks(session, max_keys):
        for person_id, profile, n in group:
            events[(person_id, profile)] = n
            rivals.setdefault((person_id, profile), defaultdict(set))  # alone under its keys: no review
            for other_id, other, _ in group:
                if (other_id, other) != (person_id, profile):
                    rivals[(person_id, profile)][other_id].add(other)
    return [Described(profile, events[(person_id, profile)],
                      [Candidate(p, tuple(sorted(described, key=repr))) for p, described in sorted(found.items())])
            for (person_id, profile), found in rivals.items()]


def _blocks(session: Session, max_keys: int) -> list[list[Member]]:
    """The descriptions filed under up to `max_keys` random blocking keys, one list per key; keys
    shared by more persons than matching would compare are left out (a child described at many
    homes counts once, as matching counts it)."""
    keys = session.scalars(select(PersonBlockKey.key).order_by(func.random()).limit(max_keys)).all()
    members: dict[str, list[Member]] = defaultdict(list)
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(PersonBlockKey.key, PersonProfile.person_id, PersonProfile.given, PersonProfile.family,
                   PersonProfile.dob, PersonProfile.sex, PersonProfile.postcode, PersonProfile.address,
                   PersonProfile.events)
            .join(PersonProfile, PersonProfile.person_id == PersonBlockKey.person_id)
            .where(PersonBlockKey.key.in_(keys[start:start + 500])))
        for key, person_id, given, family, dob, sex, postcode, address, events in rows:
            profile = Profile(given, family, date.fromisoformat(dob) if dob else None, sex, postcode,
                              address=address)
            members[key].append((person_id, profile, events or 1))
    return [group for group in members.values() if len({person_id for person_id, _, _ in group}) <= MAX_PER_KEY]


def random_pair_patterns(session: Session, pairs: int = 50_000) -> Counter[Pattern]:
    """Comparison patterns of random pairs of profiles of different persons, for u."""
    rows = session.execute(select(PersonProfile.person_id, PersonProfile.given, PersonProfile.family,
                                  PersonProfile.dob, PersonProfile.sex, PersonProfile.postcode,
                                  PersonProfile.address)
                           .order_by(func.random()).limit(2 * pairs)).all()
    patterns: Counter[Pattern] = Counter()
    for a, b in zip(rows[::2], rows[1::2], strict=False):
        if a[0] != b[0]:
            patterns[compare(_profile(a), _profile(b))] += 1
    return patterns


def _profile(row: tuple[str, str, str, str, str, str, str]) -> Profile:
    return Profile(row[1], row[2], date.fromisoformat(row[3]) if row[3] else None, row[4], row[5], address=row[6])


def value_counts(session: Session) -> tuple[dict[str, dict[str, int]], int]:
    """For term frequencies: per name and postcode, how many persons the index describes with each
    value (a child described twice the same way counts once), and how many persons it describes."""
    counts: dict[str, dict[str, int]] = {}
    for field in TF_FIELDS:
        column = getattr(PersonProfile, field)
        rows = session.execute(
            select(column, func.count(func.distinct(PersonProfile.person_id))).where(column != "").group_by(column))
        counts[field] = {value: n for value, n in rows}
    persons = session.scalar(select(func.count(func.distinct(PersonProfile.person_id)))) or 0
    return counts, persons
