"""HL7 FHIR R4 Bundles of emergency department attendances, flattened to plain records.

A Bundle carries Patient, Encounter and Flag resources. Each Encounter becomes one record joined
with the Patient it references and with any active child protection Flag (CP-IS) on that
patient, so a health connector maps it like any other flat record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
CP_IS_SYSTEM = "https://fhir.nhs.uk/CodeSystem/cp-is"
EXTENSION_BASE = "https://fhir.mash.example/StructureDefinition/"

Flat = tuple[bytes, dict[str, Any] | None, str | None]  # raw entry, fields, error


def encounter_records(bundle: Any) -> Iterator[Flat]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        yield json.dumps(bundle)[:10_000].encode(), None, "not a FHIR Bundle (resourceType must be 'Bundle')"
        return
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    patients = {ref: e["resource"] for e in entries if e["resource"].get("resourceType") == "Patient"
                for ref in _references_to(e)}
    protected = {_reference(e["resource"]) for e in entries if _is_cp_flag(e["resource"])}
    if not any(e["resource"].get("resourceType") == "Encounter" for e in entries):
        # read as nothing, the file would go to done/ with no record of it: one dead letter instead
        kinds = sorted({str(e["resource"].get("resourceType"))[:40] for e in entries})[:10]
        yield (json.dumps(bundle)[:10_000].encode(), None,
               f"the Bundle holds no Encounter (entries: {kinds}): nothing to send")
        return
    for entry in entries:
        encounter = entry["resource"]
        if encounter.get("resourceType") != "Encounter":
            continue
        reference = _reference(encounter)
        patient = patients.get(reference)
        try:
            raw = json.dumps({"encounter": entry, "patient": patient}, sort_keys=True).encode()
        except (RecursionError, ValueError) as exc:
            yield b"", None, f"Encounter {encounter.get('id')!r} cannot be read: {type(exc).__name__}"
            continue
        if patient is None:
            yield raw, None, f"Encounter {encounter.get('id')!r} references no Patient in the Bundle ({reference!r})"
            continue
        try:
            yield raw, _flatten(encounter, patient, reference in protected), None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            yield raw, None, f"Encounter {encounter.get('id')!r} is missing {exc!s}"


def _reference(resource: dict[str, Any]) -> str:
    """`subject.reference`, whatever shape a hostile or broken resource gives `subject`."""
    subject = resource.get("subject")
    return str(subject.get("reference")) if isinstance(subject, dict) else repr(subject)[:200]


def _references_to(entry: dict[str, Any]) -> list[str]:
    resource = entry["resource"]
    refs = [f"Patient/{resource.get('id')}"]
    if entry.get("fullUrl"):
        refs.append(entry["fullUrl"])
    return refs


def _is_cp_flag(resource: dict[str, Any]) -> bool:
    if resource.get("resourceType") != "Flag" or resource.get("status") != "active":
        return False
    code = resource.get("code")
    codings = (code.get("coding") if isinstance(code, dict) else None) or []
    return any(c.get("system") == CP_IS_SYSTEM for c in codings if isinstance(c, dict))


def _flatten(encounter: dict[str, Any], patient: dict[str, Any], cp_flag: bool) -> dict[str, Any]:
    name = (patient.get("name") or [{}])[0]
    address = (patient.get("address") or [{}])[0]
    extensions = {e["url"].removeprefix(EXTENSION_BASE): e.get("valueBoolean")
                  for e in encounter.get("extension") or [] if isinstance(e, dict) and "url" in e}
    return {
        "attendance_id": _identifier(encounter, None) or encounter["id"],
        "last_updated": (encounter.get("meta") or {}).get("lastUpdated"),
        "record_status": "ENTERED_IN_ERROR" if encounter.get("status") == "entered-in-error" else "ACTIVE",
        "mrn": patient["id"],
        "nhs_number": _identifier(patient, NHS_NUMBER_SYSTEM),
        "given_name": " ".join(name.get("given") or []) or None,
        "family_name": name.get("family"),
        "birth_date": patient.get("birthDate"),
        "gender": patient.get("gender"),
        "address": ", ".join(address.get("line") or []) or None,
        "postcode": address.get("postalCode"),
        "site_code": ((encounter.get("serviceProvider") or {}).get("identifier") or {}).get("value"),
        "arrived_at": (encounter.get("period") or {}).get("start"),
        "presenting_complaint": ((encounter.get("reasonCode") or [{}])[0]).get("text"),
        "safeguarding_concern": extensions.get("safeguarding-concern"),
        "injury_pattern_concern": extensions.get("injury-pattern-concern", False),
        "child_protection_flag": cp_flag,
        "discharge_destination": ((encounter.get("hospitalization") or {}).get("dischargeDisposition") or {})
        .get("text"),
    }


def _identifier(resource: dict[str, Any], system: str | None) -> str | None:
    for identifier in resource.get("identifier") or []:
        if isinstance(identifier, dict) and (system is None or identifier.get("system") == system):
            value = identifier.get("value")
            return str(value) if value is not None else None
    return None
