"""Deciding which person an event belongs to, on strong identifiers only.

Pure: given the identifiers an event carries and the persons those identifiers already belong
to, decide the link. The person index (SQL) looks the identifiers up and stores the decision.
Probabilistic matching on names and dates of birth comes later; until then an event without a
known strong identifier starts a new person rather than risk a wrong link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mash.identifiers import is_valid_nhs_number, is_valid_upn, normalise_nhs_number, normalise_upn

# Strongest first: the link method is the strongest identifier that was already known.
SCHEME_PRIORITY = ("nhs", "upn", "local")
LINK_METHODS = {"nhs": "NHS_NUMBER", "upn": "UPN", "local": "LOCAL_ID"}


@dataclass(frozen=True, order=True)
class Identifier:
    scheme: str  # nhs | upn | local
    value: str  # for local ids, "<AGENCY>:<id>" so agencies' id spaces never collide


@dataclass(frozen=True)
class LinkDecision:
    person_id: str
    method: str  # a LinkMethod symbol
    attach: tuple[Identifier, ...]  # identifiers to record as this person's
    conflicts: tuple[Identifier, ...]  # identifiers already owned by another person


def identifiers_of(subject: dict[str, Any], agency: str) -> list[Identifier]:
    """The identifiers trusted for linking: valid NHS number, valid UPN, the agency's own id."""
    found = []
    nhs = normalise_nhs_number(subject.get("nhs_number"))
    if is_valid_nhs_number(nhs):
        assert nhs is not None
        found.append(Identifier("nhs", nhs))
    upn = normalise_upn(subject.get("upn"))
    if is_valid_upn(upn):
        assert upn is not None
        found.append(Identifier("upn", upn))
    found.append(Identifier("local", f"{agency}:{subject['local_id']}"))
    return found


def decide_link(identifiers: list[Identifier], owners: dict[Identifier, str], new_person_id: str) -> LinkDecision:
    """Link to the owner of the strongest known identifier, else to a new person.

    An identifier that another person already owns is never moved: that is a possible merge of
    two records, which needs evidence and a person's review, not a silent re-link.
    """
    known = sorted((i for i in identifiers if i in owners), key=lambda i: SCHEME_PRIORITY.index(i.scheme))
    if not known:
        return LinkDecision(new_person_id, "NEW_PERSON", tuple(identifiers), ())
    strongest = known[0]
    person_id = owners[strongest]
    attach = tuple(i for i in identifiers if i not in owners)
    conflicts = tuple(i for i in known if owners[i] != person_id)
    return LinkDecision(person_id, LINK_METHODS[strongest.scheme], attach, conflicts)
