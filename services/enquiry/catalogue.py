"""The partnership's enquiry catalogue from YAML: the agencies an enquiry may ask (with their
prompts and sharing role) and the threshold decision's levels, outcomes and factor codes.

Validated at load, and refused with the file and the problem named: an agency key that cannot
name a topic, a prompt without text, two prompts filed under one id, a level that is not a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENQUIRY_DIR = Path(__file__).resolve().parents[2] / "policies" / "enquiry"
AGENCY_KEY = re.compile(r"^[a-z][a-z_]{1,30}$")  # names the topic mash.requests.<key>.v1
PROMPT_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class CatalogueError(ValueError):
    """An enquiry catalogue file that must not be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptSpec(_Strict):
    id: str
    text: str = Field(min_length=1, max_length=500)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not PROMPT_ID.match(value):
            raise ValueError(f"prompt id {value!r}: lower-case letters, digits and '_', starting with a letter")
        return value


class AgencySpec(_Strict):
    label: str = Field(min_length=1, max_length=80)
    sharing_role: str = Field(min_length=1, max_length=48)
    source_agency: str | None = Field(None, pattern=r"^[A-Z_]{2,32}$")  # as its events name it: POLICE, ...
    # whose kind of answer the sharing policy decides its returns as (<kind>.information_return)
    returns_as: Literal["police", "health", "education", "social_care"] | None = None

    @model_validator(mode="after")
    def _returns_decided(self) -> AgencySpec:
        kind = self.returns_as or (self.source_agency or "").lower()
        if kind not in ("police", "health", "education", "social_care"):
            raise ValueError("name returns_as (police, health, education or social_care): the sharing policy "
                             "decides the agency's answers as that kind")
        return self
    prompts: tuple[PromptSpec, ...] = Field(min_length=1)

    @field_validator("prompts")
    @classmethod
    def _distinct(cls, prompts: tuple[PromptSpec, ...]) -> tuple[PromptSpec, ...]:
        ids = [p.id for p in prompts]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"prompt ids used twice: {', '.join(twice)}")
        return prompts


class AgenciesSpec(_Strict):
    agencies: dict[str, AgencySpec] = Field(min_length=1)

    @field_validator("agencies")
    @classmethod
    def _keys(cls, agencies: dict[str, AgencySpec]) -> dict[str, AgencySpec]:
        for key in agencies:
            if not AGENCY_KEY.match(key):
                raise ValueError(f"agency {key!r}: a key is 2-31 lower-case letters and '_' (it names a topic)")
        return agencies


class OutcomesSpec(_Strict):
    feedback_working_days: int = Field(1, ge=1, le=10)
    levels: dict[int, str] = Field(min_length=1)
    outcomes: dict[str, str] = Field(min_length=1)
    factors: dict[str | int, str] = Field(min_length=1)  # YAML reads 20 and 21 as numbers


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str


@dataclass(frozen=True)
class Agency:
    key: str
    label: str
    sharing_role: str
    prompts: tuple[Prompt, ...]
    source_agency: str | None = None
    returns_as: str = ""

    @property
    def return_event_type(self) -> str:
        """The kind of event the sharing policy decides this agency's answers as."""
        return f"{self.returns_as}.information_return"


@dataclass(frozen=True)
class Catalogue:
    agencies: dict[str, Agency]
    levels: dict[int, str]
    outcomes: dict[str, str]
    factors: dict[str, str]
    feedback_working_days: int = 1

    def referrer(self, source_agency: str) -> Agency | None:
        """The agency whose events name themselves so (POLICE, HEALTH, ...), if the catalogue has it."""
        return next((a for a in self.agencies.values() if a.source_agency == source_agency), None)


def load_catalogue(directory: Path = ENQUIRY_DIR) -> Catalogue:
    agencies = _load(directory / "agencies.yaml", AgenciesSpec)
    outcomes = _load(directory / "outcomes.yaml", OutcomesSpec)
    assert isinstance(agencies, AgenciesSpec) and isinstance(outcomes, OutcomesSpec)
    return Catalogue(
        {key: Agency(key, a.label, a.sharing_role, tuple(Prompt(p.id, p.text) for p in a.prompts), a.source_agency,
                     a.returns_as or (a.source_agency or "").lower())
         for key, a in agencies.agencies.items()},
        dict(sorted(outcomes.levels.items())), dict(outcomes.outcomes),
        {str(code): label for code, label in outcomes.factors.items()}, outcomes.feedback_working_days)


def _load(path: Path, spec: type[BaseModel]) -> BaseModel:
    try:
        return spec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read it ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise CatalogueError(f"{path}: {problems}") from None
