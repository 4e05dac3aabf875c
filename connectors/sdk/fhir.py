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
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or not isinstance(
            bundle.get("entry", []), list):
        yield json.dumps(bundle)[:10_000].encode(), None, "not a FHIR Bundle (resourceType 'Bundle', a list of entry)"
        return
    index = _Index(bundle)
    if not index.encounters:
        # read as nothing, the file would go to done/ with no record of it: one dead letter instead
        kinds = sorted({str(r.get("resourceType"))[:40] for _, r in index.entries})[:10]
        yield (json.dumps(bundle)[:10_000].encode(), None,
               f"the Bundle holds no Encounter (entries: {kinds}): nothing to send")
        return
    codes = codes or default_codes()
    yield from index.malformed
    yield from index.unplaced_flags()
    for entry, encounter in index.encounters:
        yield index.record(entry, encounter, codes)


@lru_cache(maxsize=1)
def default_codes() -> FhirCodes:
    return uk_core.load_codes()


class _Index:
    """The Bundle's resources by every name a reference may use; each resource validated once."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.entries: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.malformed: list[Flat] = []
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.base: dict[int, str | None] = {}
        for number, entry in enumerate(bundle.get("entry") or [], start=1):
            if not (isinstance(entry, dict) and isinstance(entry.get("resource"), dict)):
                self.malformed.append((json.dumps(entry, default=str)[:10_000].encode(), None,
                                       f"Bundle entry {number} holds no resource object: not read"))
                continue
            resource = entry["resource"]
            self.entries.append((entry, resource))
            url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            self.base[id(resource)] = url
            for name in _names(url, resource):
                self.by_name.setdefault(name, []).append(resource)
        self.encounters = [(e, r) for e, r in self.entries if r.get("resourceType") == "Encounter"]
        self.problems: dict[int, str | None] = {}
        self.flags: dict[int, list[dict[str, Any]]] = {}
        self.unplaced: list[tuple[dict[str, Any], str]] = []
        self.recorded: dict[int, list[dict[str, Any]]] = {}
        for entry, resource in self.entries:
            kind = resource.get("resourceType")
            if kind == "Flag":
                owner, why = self.resolve(resource, resource.get("subject"), "Patient")
                if owner is None:
                    self.unplaced.append((entry, why or "its subject names no Patient in this Bundle"))
                else:
                    self.flags.setdefault(id(owner), []).append(resource)
            elif kind in ("Condition", "Observation"):
                seen_in, _ = self.resolve(resource, resource.get("encounter"), "Encounter")
                if seen_in is not None:
                    self.recorded.setdefault(id(seen_in), []).append(resource)

    def resolve(self, source: dict[str, Any], reference: Any, kind: str) -> tuple[dict[str, Any] | None, str | None]:
        """The one resource of `kind` a reference names, or None and why (absent, or ambiguous)."""
        if not isinstance(reference, dict):
            return None, None
        text = reference.get("reference")
        if isinstance(text, str):
            text = text.split("/_history/", 1)[0]
            base = self.base.get(id(source))
            if "://" not in text and base and "://" in base and "/" in text:
                # relative to the referencing entry's server (FHIR's rule for absolute fullUrls)
                found = self.by_name.get(base.rsplit("/", 2)[0] + "/" + text)
                if found:
                    return self._one(found, kind, text)
            found = self.by_name.get(text)
            if found is None and "://" not in text:
                found = self.by_name.get("/".join(text.rsplit("/", 2)[-2:]))
            return self._one(found or [], kind, text)
        identifier = reference.get("identifier")
        if kind == "Patient" and isinstance(identifier, dict) and identifier.get("value"):
            owners = [r for _, r in self.entries if r.get("resourceType") == "Patient" and any(
                isinstance(i, dict) and i.get("system") == identifier.get("system")
                and str(i.get("value")).replace(" ", "") == str(identifier["value"]).replace(" ", "")
                for i in r.get("identifier") or [])]
            return self._one(owners, kind, f"identifier {str(identifier.get('value'))[:40]}")
        return None, None

    @staticmethod
    def _one(found: list[dict[str, Any]], kind: str, name: str) -> tuple[dict[str, Any] | None, str | None]:
        found = [r for r in found if r.get("resourceType") == kind]
        if len({id(r) for r in found}) > 1:
            return None, (f"{name[:200]!r} names {len(found)} different {kind} resources in the Bundle "
                          "(a fullUrl, and a Type/id, must each name one)")
        return (found[0], None) if found else (None, None)

    def unplaced_flags(self) -> Iterator[Flat]:
        """A Flag no one child can be found for is its own dead letter: never a flag silently lost."""
        for entry, why in self.unplaced:
            yield (json.dumps(entry, default=str)[:10_000].encode(), None,
                   f"Flag {str(entry['resource'].get('id'))[:80]!r} cannot be placed on one Patient: {why}; "
                   "a child protection flag may be missing from this Bundle's attendances")

    def invalid(self, resource: dict[str, Any]) -> str | None:
        key = id(resource)
        if key not in self.problems:
            self.problems[key] = invalid(resource)
        return self.problems[key]

    def record(self, entry: dict[str, Any], encounter: dict[str, Any], codes: FhirCodes) -> Flat:
        label = f"Encounter {str(encounter.get('id'))[:80]!r}"
        patient, ambiguous = self.resolve(encounter, encounter.get("subject"), "Patient")
        try:
            raw = json.dumps({"encounter": entry, "patient": patient}, sort_keys=True).encode()
        except (RecursionError, ValueError, TypeError) as exc:
            return b"", None, f"{label} cannot be read: {type(exc).__name__}"
        if patient is None:
            reference = encounter.get("subject")
            shown = reference.get("reference") if isinstance(reference, dict) else reference
            return raw, None, f"{label} references no Patient in the Bundle ({str(shown)[:200]!r})" + (
                f": {ambiguous}" if ambiguous else "")
        twins = [r for r in self.by_name.get(f"Patient/{patient.get('id')}", []) if r is not patient]
        if twins:
            return raw, None, (f"{label}: {len(twins) + 1} different Patients in the Bundle have id "
                               f"{str(patient.get('id'))[:80]!r}; their local ids would join two children")
        recorded = [*self.recorded.get(id(encounter), []), *self._referenced(encounter)]
        flags = self.flags.get(id(patient), [])
        provider, _ = self.resolve(encounter, encounter.get("serviceProvider"), "Organization")
        for resource in (encounter, patient, *flags, *recorded, *([provider] if provider else [])):
            problem = self.invalid(resource)
            if problem:
                return raw, None, problem if resource is encounter else f"{label}: {problem}"
        try:
            return raw, _flatten(encounter, patient, flags, recorded, provider, codes), None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            return raw, None, f"{label} cannot be mapped: {exc!s}"[:2_000]

    def _referenced(self, encounter: dict[str, Any]) -> list[dict[str, Any]]:
        """Conditions and Observations the Encounter points to (reasonReference, diagnosis)."""
        references = [*(encounter.get("reasonReference") or []),
                      *(d.get("condition") for d in encounter.get("diagnosis") or [] if isinstance(d, dict))]
        found = []
        for reference in references:
            for kind in ("Condition", "Observation"):
                resource, _ = self.resolve(encounter, reference, kind)
                if resource is not None and resource not in found:
                    found.append(resource)
        return found


def _names(url: str | None, resource: dict[str, Any]) -> list[str]:
    names = [f"{resource.get('resourceType')}/{resource.get('id')}"] if resource.get("id") else []
    if url:
        names.append(url)
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
    except Exception as exc:  # noqa: BLE001 - the model library's own errors (e.g. KeyError on an unknown contained type)
        return f"{kind} {str(resource.get('id'))[:80]!r} is not valid FHIR R4: {type(exc).__name__}: {exc}"[:2_000]
    return None


def _flatten(encounter: dict[str, Any], patient: dict[str, Any], flags: list[dict[str, Any]],
             recorded: list[dict[str, Any]], provider: dict[str, Any] | None, codes: FhirCodes) -> dict[str, Any]:
    on = (encounter.get("period") or {}).get("start")
    if on is not None and not isinstance(on, str):
        raise ValueError(f"period.start {on!r} is not a FHIR dateTime")
    name, address = uk_core.chosen_name(patient, on), uk_core.home_address(patient, on)
    nhs_number, verified = uk_core.nhs_number(patient, on)
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
        "given_name": " ".join(g for g in name.get("given") or [] if isinstance(g, str) and g.strip()) or None,
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
        "maltreatment_alleged": (bool(concepts & codes.maltreatment_alleged)
                                 or legacy.get("maltreatment-alleged", False)),
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
