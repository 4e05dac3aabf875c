"""Deciding which person an event belongs to.

Pure: given the identifiers an event carries, the persons those identifiers already belong to,
and the candidates blocking found, decide the link. Deterministic first: a known NHS number,
UPN or agency id settles it, and identifiers owned by two persons prove them one child (a
merge). Only an event with no known identifier is matched probabilistically, and only a clear
match above the link threshold links; a possible match starts a new person and is held for
review. The person index (SQL) looks things up and stores the decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mash.identifiers import is_valid_nhs_number, is_valid_upn, normalise_nhs_number, normalise_upn
from services.enrichment.comparisons import Profile
from services.enrichment.match_model import LINK, REVIEW, Candidate, MatchModel, MatchResult, best_match

# Strongest first: the link method is the strongest identifier that was already known.
SCHEME_PRIORITY = ("nhs", "upn", "local")
LINK_METHODS = {"nhs": "NHS_NUMBER", "upn": "UPN", "local": "LOCAL_ID"}
PROBABILISTIC, NEW_PERSON = "PROBABILISTIC", "NEW_PERSON"


@dataclass(frozen=True, order=True)
class Identifier:
    scheme: str  # nhs | upn | local
    value: str  # for local ids, "<AGENCY>:<id>" so agencies' id spaces never collide


@dataclass(frozen=True)
class LinkDecision:
    person_id: str
    method: str  # a LinkMethod symbol
    attach: tuple[Identifier, ...]  # identifiers to record as this person's
    merge: tuple[str, ...] = ()  # persons this event proves to be the same child, to retire into person_id
    match: MatchResult | None = None  # the probabilistic evidence, when there was any
    review_candidate: str | None = None  # a possible match held for a person to confirm


def identifiers_of(subject: dict[str, Any], agency: str) -> list[Identifier]:
    """The identifiers trusted for linking: valid NHS number (not one its source marked UNVERIFIED),
    valid UPN, the agency's own id."""
    found = []
    nhs = normalise_nhs_number(subject.get("nhs_number"))
    if is_valid_nhs_number(nhs) and subject.get("nhs_number_status") != "UNVERIFIED":
        assert nhs is not None
        found.append(Identifier("nhs", nhs))
    upn = normalise_upn(subject.get("upn"))
    if is_valid_upn(upn):
        assert upn is not None
        found.append(Identifier("upn", upn))
    found.append(Identifier("local", f"{agency}:{subject['local_id']}"))
    return found


def decide_link(identifiers: list[Identifier], owners: dict[Identifier, str], new_person_id: str | Callable[[], str],
                model: MatchModel | None = None, profile: Profile | None = None,
                candidates: Sequence[Candidate] = ()) -> LinkDecision:
    """Deterministic on known identifiers, else probabilistic on the candidates, else a new person
    (`new_person_id` may be a function: an id is made only for a new person)."""
    known = sorted((i for i in identifiers if i in owners), key=lambda i: SCHEME_PRIORITY.index(i.scheme))
    attach = tuple(i for i in identifiers if i not in owners)
    if known:
        person_id = owners[known[0]]
        merge = tuple(sorted({owners[i] for i in known} - {person_id}))
        return LinkDecision(person_id, LINK_METHODS[known[0].scheme], attach, merge)
    new = new_person_id if callable(new_person_id) else lambda: new_person_id
    if model is None or profile is None or not candidates:
        return LinkDecision(new(), NEW_PERSON, attach)
    match = best_match(model, profile, candidates)
    if match.outcome == LINK:
        assert match.person_id is not None
        return LinkDecision(match.person_id, PROBABILISTIC, attach, match=match)
    review = match.person_id if match.outcome == REVIEW else None
    return LinkDecision(new(), NEW_PERSON, attach, match=match, review_candidate=review)


def released_by_revision(before: Iterable[Identifier], after: Iterable[Identifier],
                         first_seen_here: Callable[[Identifier], bool],
                         asserted_elsewhere: Callable[[Identifier], bool]) -> set[Identifier]:
    """The identifiers a revision of a record takes back before it is linked again.

    A revision that drops an identifier its record asserted (an NHS number corrected or removed,
    or the record withdrawn: it asserts nothing) says the earlier link may rest on an error, so
    what the record itself brought to its child is released and decided again: identifiers first
    seen with this record, an agency's own id always (other records of the same subject only
    followed it there), a strong one unless another record asserts it too. Identifiers the child
    held before this record are never taken. A revision that only adds identifiers releases
    nothing: it is new evidence, and may prove a merge."""
    held, now = set(before), set(after)
    if not held - now:
        return set()
    return {i for i in held if first_seen_here(i) and (i.scheme == "local" or not asserted_elsewhere(i))}
