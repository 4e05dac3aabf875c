"""Labelled pairs a match model must decide as expected (`policies/identity/match.cases.yaml`).

Pure apart from reading the file. Weights learned from a partnership's own records are accepted
only if they still decide these as a linkage reviewer would: twins and siblings apart, the usual
slips joined. The same check runs on the model in use (`mash hub match-model test`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mash.errors import UnusableFile
from mash.identifiers import is_valid_nhs_number
from mash.settings import PROJECT_ROOT
from services.enrichment.comparisons import Profile, normalise_address, normalise_name, normalise_postcode
from services.enrichment.match_model import LINK, NEW, REVIEW, Candidate, MatchModel, best_match

DEFAULT_CASES = PROJECT_ROOT / "policies" / "identity" / "match.cases.yaml"
ACCEPTS: dict[str, frozenset[str]] = {
    "link": frozenset({LINK}), "review": frozenset({REVIEW}), "new": frozenset({NEW}),
    "not_link": frozenset({REVIEW, NEW}), "not_new": frozenset({LINK, REVIEW}),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Description(_Strict):
    given: str = Field("", max_length=64)
    family: str = Field("", max_length=64)
    dob: date | None = None
    sex: Literal["F", "M", ""] = ""
    postcode: str = Field("", max_length=16)
    address: str = Field("", max_length=160)
    nhs: str = Field("", max_length=10)

    def profile(self) -> Profile:
        return Profile(normalise_name(self.given), normalise_name(self.family), self.dob, self.sex,
                       normalise_postcode(self.postcode), self.nhs if is_valid_nhs_number(self.nhs) else "",
                       address=normalise_address(self.address))


class MatchCase(_Strict):
    name: str
    event: Description
    known: list[Description] = Field(min_length=1)
    expect: Literal["link", "review", "new", "not_link", "not_new"]


class _CaseFile(_Strict):
    cases: list[MatchCase] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    case: MatchCase
    outcome: str  # LINK | REVIEW | NEW
    score: float | None

    @property
    def passed(self) -> bool:
        return self.outcome in ACCEPTS[self.case.expect]


def load_cases(path: Path = DEFAULT_CASES) -> tuple[MatchCase, ...]:
    try:
        return tuple(_CaseFile.model_validate(yaml.safe_load(path.read_text())).cases)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: also a bad date, bad encoding, pydantic
        raise UnusableFile(f"{path}: not a usable file of labelled match cases ({exc}); see "
                           f"policies/identity/match.cases.yaml for the shape") from exc


def run_cases(model: MatchModel, cases: tuple[MatchCase, ...]) -> list[CaseResult]:
    """Each case's event scored against its one known person, as the index would."""
    results = []
    for case in cases:
        known = Candidate("known", tuple(d.profile() for d in case.known))
        match = best_match(model, case.event.profile(), [known])
        results.append(CaseResult(case, match.outcome, match.score))
    return results
