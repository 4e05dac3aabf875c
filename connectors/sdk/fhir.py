"""HL7 FHIR R4 Bundles of emergency department attendances (UK Core), flattened to plain records.

A Bundle carries Patient, Encounter, Flag and perhaps Organization, Condition and Observation
resources. Each Encounter becomes one record joined with the Patient it references, any active
CP-IS child protection Flag on that Patient, and the Conditions and Observations recorded in it, so
a health connector maps it like any other flat record. References resolve by `fullUrl`
(`urn:uuid:...` or an absolute URL) and by `Type/id`.

Each resource the record is built from is validated by the `fhir.resources` models (R4B, the same
as R4 for these resources). One that is not valid FHIR fails its Encounter with the model's own
words, never the Bundle: one bad Encounter is one dead letter, and the others are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from connectors.sdk import uk_core
from connectors.sdk.uk_core import FhirCodes

Flat = tuple[bytes, dict[str, Any] | None, str | None]  # raw entry, fields, error
READ = ("Patient", "Encounter", "Flag", "Organization", "Condition", "Observation")  # validated when used
SHOWN_ERRORS = 3


def encounter_records(bundle: Any, codes: FhirCodes | None = None) -> Iterator[Flat]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        yield json.dumps(bundle)[:10_000].encode(), None, "not a FHIR Bundle (resourceType must be 'Bundle')"
        return
    index = _Index(bundle)
    if not index.encounters:
        # read as nothing, the file would go to done/ with no record of it: one dead letter instead
        kinds = sorted({str(r.get("resourceType"))[:40] for _, r in index.entries})[:10]
        yield (json.dumps(bundle)[:10_000].encode(), None,
               f"the Bundle holds no Encounter (entries: {kinds}): nothing to send")
        return
    codes = codes or default_codes()
    for entry, encounter in index.encounters:
        yield index.record(entry, encounter, codes)


@lru_cache(maxsize=1)
def default_codes() -> FhirCodes:
    return uk_core.load_codes()


@dataclass
class _Index:
    """The Bundle's resources by every name a reference may use."""

    bundle: dict[str, Any]
    entries: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    by_reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    encounters: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for entry in self.bundle.get("entry") or []:
            if not (isinstance(entry, dict) and isinstance(entry.get("resource"), dict)):
                continue
            resource = entry["resource"]
            self.entries.append((entry, resource))
            for name in _names(entry, resource):
                self.by_reference.setdefault(name, resource)
            if resource.get("resourceType") == "Encounter":
                self.encounters.append((entry, resource))

    def resolve(self, reference: Any, kind: str) -> dict[str, Any] | None:
        text = reference.get("reference") if isinstance(reference, dict) else None
        if not isinstance(text, str):
            return None
        found = self.by_reference.get(text) or self.by_reference.get("/".join(text.rsplit("/", 2)[-2:]))
        return found if found is not None and found.get("resourceType") == kind else None

    def about(self, kind: str, patient: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for _, r in self.entries if r.get("resourceType") == kind
                and self.resolve(r.get("subject") or r.get("patient"), "Patient") is patient]

    def recorded_in(self, encounter: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for _, r in self.entries if r.get("resourceType") in ("Condition", "Observation")
                and self.resolve(r.get("encounter"), "Encounter") is encounter]

    def record(self, entry: dict[str, Any], encounter: dict[str, Any], codes: FhirCodes) -> Flat:
        label = f"Encounter {str(encounter.get('id'))[:80]!r}"
        patient = self.resolve(encounter.get("subject"), "Patient")
        try:
            raw = json.dumps({"encounter": entry, "patient": patient}, sort_keys=True).encode()
        except (RecursionError, ValueError) as exc:
            return b"", None, f"{label} cannot be read: {type(exc).__name__}"
        if patient is None:
            reference = encounter.get("subject")
            shown = reference.get("reference") if isinstance(reference, dict) else reference
            return raw, None, f"{label} references no Patient in the Bundle ({str(shown)[:200]!r})"
        flags, recorded = self.about("Flag", patient), self.recorded_in(encounter)
        provider = self.resolve(encounter.get("serviceProvider"), "Organization")
        for resource in (encounter, patient, *flags, *recorded, *([provider] if provider else [])):
            problem = invalid(resource)
            if problem:
                return raw, None, problem if resource is encounter else f"{label}: {problem}"
        try:
            return raw, _flatten(encounter, patient, flags, recorded, provider, codes), None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            return raw, None, f"{label} is missing {exc!s}"


def _names(entry: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    names = [f"{resource.get('resourceType')}/{resource.get('id')}"] if resource.get("id") else []
    if isinstance(entry.get("fullUrl"), str):
        names.append(entry["fullUrl"])
    return names


def invalid(resource: dict[str, Any]) -> str | None:
    """Why a resource is not valid FHIR R4, in the model's words (the first few problems), or None."""
    kind = str(resource.get("resourceType"))
    if kind not in READ:
        return None
    try:
        get_fhir_model_class(kind).model_validate(resource)
    except ValidationError as exc:
        problems = exc.errors()
        said = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}" for e in problems[:SHOWN_ERRORS])
        more = f" (and {len(problems) - SHOWN_ERRORS} more)" if len(problems) > SHOWN_ERRORS else ""
        return f"{kind} {str(resource.get('id'))[:80]!r} is not valid FHIR R4: {said}{more}"[:2_000]
    except (ValueError, TypeError, RecursionError) as exc:
        return f"{kind} {str(resource.get('id'))[:80]!r} is not valid FHIR R4: {type(exc).__name__}: {exc}"[:2_000]
    return None


def _flatten(encounter: dict[str, Any], patient: dict[str, Any], flags: list[dict[str, Any]],
             recorded: list[dict[str, Any]], provider: dict[str, Any] | None, codes: FhirCodes) -> dict[str, Any]:
    on = (encounter.get("period") or {}).get("start")
    name, address = uk_core.chosen_name(patient, on), uk_core.home_address(patient, on)
    nhs_number, verified = uk_core.nhs_number(patient)
    concepts = uk_core.encounter_concepts(encounter, recorded)
    legacy = uk_core.legacy_flags(encounter)
    reason = (encounter.get("reasonCode") or [{}])[0]
    return {
        "attendance_id": _identifier(encounter, None) or encounter["id"],
        "last_updated": (encounter.get("meta") or {}).get("lastUpdated"),
        "record_status": "ENTERED_IN_ERROR" if encounter.get("status") == "entered-in-error" else "ACTIVE",
        "mrn": patient["id"],
        "nhs_number": nhs_number,
        "nhs_number_verified": verified,
        "given_name": " ".join(name.get("given") or []) or None,
        "family_name": name.get("family"),
        "birth_date": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "address": ", ".join(address.get("line") or []) or None,
        "postcode": address.get("postalCode"),
        "site_code": _site(encounter, provider),
        "arrived_at": on,
        "presenting_complaint": reason.get("text") or next((c.get("display") for c in uk_core.codings(reason)), None),
        "safeguarding_concern": (bool(concepts & codes.safeguarding_concern)
                                 or legacy.get("safeguarding-concern", False)),
        "injury_pattern_concern": (bool(concepts & codes.injury_pattern_concern)
                                   or legacy.get("injury-pattern-concern", False)),
        "child_protection_flag": any(uk_core.is_child_protection_flag(f, codes, on) for f in flags),
        "discharge_destination": _discharge(encounter),
    }


def _site(encounter: dict[str, Any], provider: dict[str, Any] | None) -> str | None:
    """The ODS code: the serviceProvider's own identifier, else the Organization it references."""
    identifier = (encounter.get("serviceProvider") or {}).get("identifier") or {}
    if identifier.get("value"):
        return str(identifier["value"])
    return _identifier(provider, uk_core.ODS_SYSTEM) if provider else None


def _discharge(encounter: dict[str, Any]) -> str | None:
    disposition = (encounter.get("hospitalization") or {}).get("dischargeDisposition") or {}
    return disposition.get("text") or next((c.get("display") for c in uk_core.codings(disposition)), None)


def _identifier(resource: dict[str, Any], system: str | None) -> str | None:
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and (system is None or identifier.get("system") == system):
            value = identifier.get("value")
            return str(value) if value is not None else None
    return None
