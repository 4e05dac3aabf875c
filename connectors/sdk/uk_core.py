"""What an emergency department attendance says, read the way HL7 FHIR UK Core (R4) records it.

Plain functions over validated resources (as dicts): which of a Patient's names and addresses is the
one to use, whether its NHS number was verified, whether the Encounter records a safeguarding
concern as the Emergency Care Data Set codes it, and whether a Flag is the national Child
Protection - Information Sharing (CP-IS) flag. docs/mappings/health.md gives the field-by-field
mapping and the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
SNOMED = "http://snomed.info/sct"
VERIFICATION_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFICATION_SYSTEMS = frozenset({  # England's code system, and the one UK Core used before it
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland",
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatus",
})
VERIFIED = "01"  # "Number present and verified": the only status a number is trusted for linking with
FLAG_CATEGORY_SYSTEM = "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory"
CP_IS_CATEGORY = "CP-IS"
LEGACY_CP_IS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/cp-is"  # this project's own code before UK Core
LEGACY_EXTENSION_BASE = "https://fhir.mash.example/StructureDefinition/"  # ditto: read as a fallback
DEFAULT_CODES_PATH = Path(__file__).with_name("fhir_codes.yaml")
CODE_LISTS = ("safeguarding_concern", "injury_pattern_concern", "child_protection", "maltreatment_alleged")
CONCEPT_ID = re.compile(r"[1-9][0-9]{5,17}")

NAME_USES = ("official", "usual", None)  # in order of preference; nickname, old, maiden, anonymous: never
ADDRESS_USES = ("home", None)  # a home address, else one that does not say; work, billing, old, temp: never


@dataclass(frozen=True)
class FhirCodes:
    """SNOMED CT concept ids that mean a concern (a deployment's own list replaces the shipped one)."""

    safeguarding_concern: frozenset[str]
    injury_pattern_concern: frozenset[str]
    child_protection: frozenset[str]
    maltreatment_alleged: frozenset[str] = frozenset()  # an injury intent of maltreatment by a parent or carer


def load_codes(path: Path | None = None) -> FhirCodes:
    path = path or DEFAULT_CODES_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the FHIR code list: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the FHIR code list is a mapping of lists (see {DEFAULT_CODES_PATH.name})")

    unknown = sorted(set(raw) - set(CODE_LISTS))
    if unknown or not raw:
        raise ValueError(f"{path}: the FHIR code list has the keys {', '.join(CODE_LISTS)}"
                         + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "; it is empty"))

    def codes(key: str) -> frozenset[str]:
        value = raw.get(key) or {}
        if not isinstance(value, (dict, list)):
            raise ValueError(f"{path}: {key!r} must be a mapping of concept id to term (or a list of ids)")
        ids = frozenset(str(code).strip() for code in value)
        bad = sorted(i for i in ids if not CONCEPT_ID.fullmatch(i))
        if bad:
            raise ValueError(f"{path}: {key!r}: not SNOMED CT concept ids (6 to 18 digits): {bad[:5]}")
        return ids

    return FhirCodes(codes("safeguarding_concern"), codes("injury_pattern_concern"), codes("child_protection"),
                     codes("maltreatment_alleged"))


def current(element: dict[str, Any], on: str | None) -> bool:
    """In force at `on` (the attendance's FHIR dateTime): not ended before it, not begun after it.

    FHIR dates may be partial (2026, 2026-06) and a period's end includes all of it; two
    dateTimes with zones are compared as instants, a date against the attendance's own date.
    """
    period = element.get("period") or {}
    if on is None or not isinstance(period, dict):
        return True
    end, start = period.get("end"), period.get("start")
    return not (end and _before(str(end), on)) and not (start and _before(on, str(start)))


def _before(a: str, b: str) -> bool:
    """`a` is wholly before `b` (FHIR date/dateTime text, either possibly partial)."""
    if "T" in a and "T" in b:
        try:
            return _instant(a) < _instant(b)
        except ValueError:
            pass
    size = min(len(a.split("T")[0]), len(b.split("T")[0]))
    return a[:size] < b[:size]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def chosen_name(patient: dict[str, Any], on: str | None) -> dict[str, Any]:
    """The official name, else the usual one, else one with no `use`; never a nickname or old name."""
    return _first_by_use(patient.get("name"), NAME_USES, on)


def home_address(patient: dict[str, Any], on: str | None) -> dict[str, Any]:
    """The current home address: not `use` old, no period that ended before the attendance."""
    return _first_by_use(patient.get("address"), ADDRESS_USES, on)


def _first_by_use(items: Any, uses: tuple[str | None, ...], on: str | None) -> dict[str, Any]:
    candidates = [i for i in items or [] if isinstance(i, dict) and current(i, on)]
    for use in uses:
        for item in candidates:
            if item.get("use") == use:
                return item
    return {}


def nhs_number(patient: dict[str, Any], on: str | None = None) -> tuple[str | None, bool]:
    """The NHS number and whether UK Core's verification status says it was verified ("01").

    With several, a verified one wins; an `old` or ended one is never taken. A number with no status
    is kept but not trusted: UK Core
    carries the status on every NHS number a system has traced.
    """
    found: list[tuple[str, bool]] = []
    for identifier in patient.get("identifier") or []:
        if (isinstance(identifier, dict) and identifier.get("system") == NHS_NUMBER_SYSTEM and identifier.get("value")
                and identifier.get("use") != "old" and current(identifier, None if on is None else on)):
            found.append((str(identifier["value"]), _verified(identifier)))
    found.sort(key=lambda f: not f[1])
    return found[0] if found else (None, False)


def _verified(identifier: dict[str, Any]) -> bool:
    return any(coding.get("system") in VERIFICATION_SYSTEMS and coding.get("code") == VERIFIED
               for extension in identifier.get("extension") or []
               if isinstance(extension, dict) and extension.get("url") == VERIFICATION_EXTENSION
               for coding in codings(extension.get("valueCodeableConcept")))


def encounter_concepts(encounter: dict[str, Any], recorded: Iterable[dict[str, Any]] = ()) -> set[str]:
    """SNOMED CT concept ids the Encounter records: its reasons, types and coded extensions, and the
    codes of the Conditions and Observations recorded in it (`recorded`)."""
    concepts = [*(encounter.get("reasonCode") or []), *(encounter.get("type") or [])]
    concepts += [e.get("valueCodeableConcept") for e in _extensions(encounter)]
    concepts += [concept for r in recorded for concept in (r.get("code"), r.get("valueCodeableConcept"))]
    return {str(c["code"]) for concept in concepts for c in codings(concept)
            if c.get("system") == SNOMED and c.get("code")}


def legacy_flags(encounter: dict[str, Any]) -> dict[str, bool]:
    """This project's own boolean extensions, from before UK Core: read when an old feed sends them.
    A value that is not a boolean (FHIR JSON's true/false) is refused, never read as false."""
    flags = {}
    for extension in _extensions(encounter):
        url = str(extension.get("url", ""))
        if url.startswith(LEGACY_EXTENSION_BASE):
            value = extension.get("valueBoolean")
            if not isinstance(value, bool):
                raise ValueError(f"extension {url!r}: valueBoolean {str(value)[:40]!r} is not true or false")
            flags[url.removeprefix(LEGACY_EXTENSION_BASE)] = value
    return flags


def is_child_protection_flag(flag: dict[str, Any], codes: FhirCodes, on: str | None) -> bool:
    """An active CP-IS flag (NHS England's Patient Flag category CP-IS, or a child protection code)."""
    if flag.get("status") != "active" or not current(flag, on):
        return False
    categories = [c for concept in flag.get("category") or [] for c in codings(concept)]
    if any(c.get("system") == FLAG_CATEGORY_SYSTEM and c.get("code") == CP_IS_CATEGORY for c in categories):
        return True
    return any((c.get("system") == SNOMED and str(c.get("code")) in codes.child_protection)
               or c.get("system") == LEGACY_CP_IS_SYSTEM for c in codings(flag.get("code")))


def codings(concept: Any) -> Iterator[dict[str, Any]]:
    if isinstance(concept, dict):
        yield from (c for c in concept.get("coding") or [] if isinstance(c, dict))


def _extensions(resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every extension, nested ones too (complex extensions hold their values a level down)."""
    stack = [e for e in resource.get("extension") or [] if isinstance(e, dict)]
    while stack:
        extension = stack.pop()
        yield extension
        stack.extend(e for e in extension.get("extension") or [] if isinstance(e, dict))
