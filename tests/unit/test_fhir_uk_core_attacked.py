"""Attacks on the FHIR UK Core reader (connectors/sdk/fhir.py, connectors/sdk/uk_core.py).

Tests marked xfail(strict=True) are DEFECTS found by attacking the change: each docstring says what
breaks and why it matters. The others are attacks the reader survives, kept to guard the behaviour.
The production code is not changed here; fixing a defect turns its test into an XPASS (strict: a
failure), which is the cue to drop the marker.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import build_connector
from connectors.sdk import fhir
from connectors.sdk.fhir import encounter_records
from connectors.sdk.formats import fhir_bundle, read_records
from connectors.sdk.uk_core import load_codes, nhs_number
from services.enrichment.linking import identifiers_of

VERIFICATION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
STATUS_ENGLAND = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SCT = "http://snomed.info/sct"
CHILD_IS_CAUSE_FOR_CONCERN = "836881000000105"
LEGACY = "https://fhir.mash.example/StructureDefinition/"
PATIENT_URL = "urn:uuid:11111111-1111-4111-8111-111111111111"


# -- builders (copied, not imported, from test_fhir_uk_core.py so the two files evolve apart) -------------

def nhs(value: str, status: str | None = "01", system: str = STATUS_ENGLAND) -> dict[str, Any]:
    identifier: dict[str, Any] = {"system": NHS_SYSTEM, "value": value}
    if status:
        identifier["extension"] = [{"url": VERIFICATION, "valueCodeableConcept": {
            "coding": [{"system": system, "code": status}]}}]
    return identifier


def patient(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": "MRN1", "identifier": [nhs("9434765919")],
        "name": [{"use": "official", "given": ["Amelia", "Rose"], "family": "Hughes"}],
        "gender": "female", "birthDate": "2016-04-12",
        "address": [{"use": "home", "line": ["1 Current Road"], "postalCode": "LS6 2QT"}],
    }
    resource.update(changes)
    return resource


def other_patient(**changes: Any) -> dict[str, Any]:
    """A different child who happens to have the same local id (another trust's PAS, or a merge)."""
    return patient(identifier=[nhs("9434765870")], name=[{"use": "official", "given": ["Bob"], "family": "Other"}],
                   address=[{"use": "home", "line": ["7 Elsewhere"], "postalCode": "M1 1AA"}], **changes)


def encounter(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Encounter", "id": "enc-1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": PATIENT_URL},
        "period": {"start": "2026-11-05T02:15:00Z"},
        "reasonCode": [{"text": "Head injury, fall down stairs"}],
        "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                                           "value": "RR801"}},
    }
    resource.update(changes)
    return resource


def cp_is_flag(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Flag", "status": "active",
        "category": [{"coding": [{"system": "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory",
                                  "code": "CP-IS"}]}],
        "code": {"coding": [{"system": SCT, "code": "342191000000101",
                             "display": "Subject to child protection plan"}]},
        "subject": {"reference": PATIENT_URL}}
    resource.update(changes)
    return resource


def concern_condition(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": "cond-1", "subject": {"reference": "Patient/MRN1"},
        "encounter": {"reference": "Encounter/enc-1"},
        "code": {"coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN}]}}
    resource.update(changes)
    return resource


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [{"fullUrl": PATIENT_URL if r["resourceType"] == "Patient" else
                f"urn:uuid:{n:08d}-0000-4000-8000-000000000000", "resource": r} for n, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def entries_bundle(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries]}


def results(document: dict[str, Any]) -> list[tuple[dict[str, Any] | None, str | None]]:
    return [(fields, error) for _, fields, error in encounter_records(document)]


def one(*resources: dict[str, Any]) -> dict[str, Any]:
    (fields, error), = results(bundle(*resources))
    assert error is None, error
    assert fields is not None
    return fields


def mapped_subject(fields: dict[str, Any]) -> dict[str, Any]:
    return build_connector("health", Path(tempfile.gettempdir())).map(fields).subject


def write(tmp_path: Path, document: dict[str, Any], name: str = "bundle.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


# =========================================================================================================
# DEFECTS
# =========================================================================================================

def test_the_deployments_code_list_is_used_when_a_file_is_read(tmp_path: Path) -> None:
    """formats.read_records(..., fhir_codes=...) passes the deployment's list to fhir_bundle, but
    fhir_bundle calls encounter_records(bundle) without `codes`: the shipped five-concept list is
    always used. A deployment that configured the full ECDS safeguarding refset has every concern
    coded outside the shipped five silently read as no concern. Severity: HIGH (missed safeguarding)."""
    codes = tmp_path / "codes.yaml"
    codes.write_text("safeguarding_concern: ['999999999']\ninjury_pattern_concern: []\nchild_protection: []\n")
    attendance = encounter(reasonCode=[{"text": "Fall", "coding": [{"system": SCT, "code": "999999999"}]}])
    path = write(tmp_path, bundle(patient(), attendance))
    (record,) = list(read_records(path, 0, "fhir", codes))
    assert record.error is None and record.fields is not None
    assert record.fields["safeguarding_concern"] is True


@pytest.mark.parametrize("kind", ["Nope", "", "patient", "Patient "])
def test_a_contained_resource_of_unknown_type_fails_only_its_own_encounter(tmp_path: Path, kind: str) -> None:
    """get_fhir_model_class raises KeyError ('R4.NopeType') for a contained resource of an unknown
    type; invalid() catches only ValidationError/ValueError/TypeError/RecursionError, so the KeyError
    escapes encounter_records. fhir_bundle then turns the file into one document error "could not be
    read past encounter 1": every later Encounter of the Bundle is never read and the file goes to
    failed/. One hostile Encounter stops the others. Severity: HIGH."""
    first = encounter(id="enc-1")
    hostile = encounter(id="enc-2", contained=[{"resourceType": kind, "id": "c1"}])
    third = encounter(id="enc-3")
    path = write(tmp_path, bundle(patient(), first, hostile, third))
    records = list(fhir_bundle(path))
    assert [r.position.get("document", False) for r in records] == [False, False, False]
    assert records[0].error is None and records[2].error is None
    assert "not valid FHIR" in str(records[1].error)


def test_a_relative_reference_resolves_against_its_own_servers_base() -> None:
    """FHIR (Bundle, 'Resolving references in Bundles'): a relative reference `Patient/MRN1` in an entry
    whose fullUrl is https://b.example/fhir/Encounter/e2 means https://b.example/fhir/Patient/MRN1.
    The reader indexes `Type/id` with setdefault, so it resolves to the FIRST Patient with id MRN1 -
    another child, on another server: the attendance is sent with that child's name, NHS number
    (verified, so it links) and address. Severity: HIGH (wrong link, data breach)."""
    document = entries_bundle(("https://a.example/fhir/Patient/MRN1", patient()),
                              ("https://b.example/fhir/Patient/MRN1", other_patient()),
                              ("https://b.example/fhir/Encounter/e2",
                               encounter(id="e2", subject={"reference": "Patient/MRN1"})))
    (fields, _error), = results(document)
    assert fields is None or fields["nhs_number"] == "9434765870"  # Bob's, or a dead letter: never Amelia's


def test_an_absolute_reference_to_another_servers_patient_is_not_a_local_patient_with_that_id() -> None:
    """`https://c.example/fhir/Patient/MRN1` is not in the Bundle; the fallback `Type/id` lookup finds
    the Patient whose fullUrl is https://a.example/fhir/Patient/MRN1 - a different server, so a
    different child. The doc's fallback ("an absolute reference also finds Patient/123") is only
    sound when the found entry has no absolute fullUrl of its own on another base. The Encounter is
    joined to the wrong child and linked on that child's verified NHS number. Severity: HIGH."""
    document = entries_bundle(("https://a.example/fhir/Patient/MRN1", patient()),
                              ("https://a.example/fhir/Encounter/e4",
                               encounter(id="e4", subject={"reference": "https://c.example/fhir/Patient/MRN1"})))
    (fields, error), = results(document)
    assert fields is None and "Patient" in str(error)


def test_two_children_with_the_same_patient_id_are_never_given_the_same_local_id() -> None:
    """Two Patients with different fullUrls, different verified NHS numbers and different names, but
    the same `id` (two trusts' PAS numbers collide, or a merged extract). Each Encounter resolves
    correctly by fullUrl, but both records carry mrn 'MRN1', so subject.local_id is HEALTH:MRN1 for
    both and linking joins two children by the agency id (and then proves a 'merge' of their NHS
    numbers). Expected: the ambiguity is a dead letter, or the ids are kept apart. Severity: HIGH."""
    a_url, b_url = "urn:uuid:aaaaaaaa-0000-4000-8000-000000000000", "urn:uuid:bbbbbbbb-0000-4000-8000-000000000000"
    document = entries_bundle((a_url, patient()), (b_url, other_patient()),
                              ("urn:uuid:e1", encounter(id="e1", subject={"reference": a_url})),
                              ("urn:uuid:e2", encounter(id="e2", subject={"reference": b_url})))
    sent = [fields for fields, error in results(document) if fields is not None]
    local_ids = [identifiers_of(mapped_subject(f), "HEALTH")[-1] for f in sent]
    assert len(set(local_ids)) == len(local_ids)


def test_a_duplicate_full_url_is_refused_not_resolved_to_the_first() -> None:
    """Bundle invariant bdl-7: fullUrl must be unique. Two Patients share a fullUrl; the Encounter
    references it and is silently joined to the first - which may be the wrong child. Expected: a
    dead letter naming the duplicate. Severity: HIGH (wrong link)."""
    document = entries_bundle((PATIENT_URL, patient()), (PATIENT_URL, other_patient(id="MRN2")),
                              ("urn:uuid:e1", encounter()))
    (fields, error), = results(document)
    assert fields is None and "fullUrl" in str(error)


def test_an_ambiguous_flag_reference_never_silently_drops_a_child_protection_flag() -> None:
    """Two children with id MRN1 (different fullUrls); a CP-IS Flag references `Patient/MRN1`. The
    index gives it to the first child only; the second child's attendance is sent clean with
    child_protection_flag False. Either child could be the flag's subject: the safe outcome is a
    dead letter (or the flag on both), never a silent False. Severity: HIGH."""
    a_url, b_url = "urn:uuid:aaaaaaaa-0000-4000-8000-000000000000", "urn:uuid:bbbbbbbb-0000-4000-8000-000000000000"
    document = entries_bundle((a_url, patient()), (b_url, other_patient()),
                              ("urn:uuid:e1", encounter(id="e1", subject={"reference": a_url})),
                              ("urn:uuid:e2", encounter(id="e2", subject={"reference": b_url})),
                              ("urn:uuid:f1", cp_is_flag(subject={"reference": "Patient/MRN1"})))
    for fields, _error in results(document):
        assert fields is None or fields["child_protection_flag"] is True, "a CP-IS flag silently dropped"


@pytest.mark.parametrize("where", ["flag", "condition"])
def test_a_versioned_reference_still_finds_its_resource(where: str) -> None:
    """FHIR allows `Patient/MRN1/_history/2`. resolve() tries `rsplit('/', 2)[-2:]` = `_history/2`, so
    the reference resolves to nothing. For a Flag this means about() never attaches it: the CP-IS
    flag is never validated and never counted (silent miss). For a Condition recorded in the
    Encounter (`Encounter/enc-1/_history/1`) the ECDS safeguarding concern is silently missed.
    Severity: HIGH (missed child protection / safeguarding)."""
    if where == "flag":
        fields = one(patient(), encounter(), cp_is_flag(subject={"reference": "Patient/MRN1/_history/2"}))
        assert fields["child_protection_flag"] is True
    else:
        condition = concern_condition(encounter={"reference": "Encounter/enc-1/_history/1"})
        assert one(patient(), encounter(), condition)["safeguarding_concern"] is True


def test_an_encounter_with_a_versioned_patient_reference_maps() -> None:
    """Same cause as above, for Encounter.subject: a valid attendance is refused ('references no
    Patient in the Bundle'). Not lost (a dead letter), but every attendance from a system that sends
    version-specific references fails. Severity: MEDIUM."""
    fields = one(patient(), encounter(subject={"reference": "Patient/MRN1/_history/2"}))
    assert fields["mrn"] == "MRN1"


@pytest.mark.parametrize("subject", [
    {"identifier": {"system": NHS_SYSTEM, "value": "9434765919"}},  # valid FHIR: CP-IS is keyed on NHS number
    "Patient/MRN1",  # not a Reference at all: should fail validation, so fail the Encounter
    {"reference": ["Patient/MRN1"]},
], ids=["by-nhs-number", "string", "list"])
def test_a_flag_that_cannot_be_placed_is_never_silently_skipped(subject: Any) -> None:
    """about() only attaches Flags whose subject *resolves* to the Patient; everything else is
    ignored before validation. The doc promises "A malformed Flag on the child fails the Encounter
    rather than be skipped: a child protection flag is never silently missed", but a Flag referencing
    the child by NHS number (a valid logical reference, the natural key of CP-IS) or with a malformed
    subject is dropped and the attendance sent with child_protection_flag False. Expected: counted,
    or a dead letter. Severity: HIGH."""
    outcomes = results(bundle(patient(), encounter(), cp_is_flag(subject=subject)))
    fields = [f for f, _ in outcomes if f is not None]
    assert all(f["child_protection_flag"] for f in fields) or any(
        "Flag" in str(e) and "cannot be placed" in str(e) for _, e in outcomes)


def test_a_flag_ending_after_the_attendance_in_utc_is_current_across_time_zones() -> None:
    """current() compares `str(end)[:10] >= on[:10]`. Attendance 2026-07-01T00:30:00+01:00 (BST) is
    2026-06-30T23:30Z; a CP-IS flag ending 2026-06-30T23:45:00Z was still active then, but
    '2026-06-30' < '2026-07-01' so the flag is treated as ended and silently not counted.
    Severity: HIGH (missed child protection flag; UK systems mix BST local times and UTC)."""
    attendance = encounter(period={"start": "2026-07-01T00:30:00+01:00"})
    flag = cp_is_flag(period={"start": "2026-01-01", "end": "2026-06-30T23:45:00Z"})
    assert one(patient(), attendance, flag)["child_protection_flag"] is True


def test_a_flag_ending_in_the_attendance_month_is_current() -> None:
    """FHIR Period: "the end value includes any matching date/time" - an end of `2026-11` covers all
    of November 2026. Text comparison makes '2026-11' < '2026-11-05', so a CP-IS flag current on
    5 November is treated as ended and missed. Severity: MEDIUM (valid FHIR, silent miss)."""
    flag = cp_is_flag(period={"start": "2026-01", "end": "2026-11"})
    assert one(patient(), encounter(), flag)["child_protection_flag"] is True


@pytest.mark.parametrize("value", ["true", 1, "yes"])
def test_a_legacy_boolean_extension_is_read_or_refused_never_ignored(value: Any) -> None:
    """fhir.resources validates valueBoolean in pydantic's lax mode: "true", 1 and "yes" are accepted
    as True, so the Encounter is 'valid'. legacy_flags() then reads the raw dict and requires
    isinstance(bool), so the safeguarding concern is dropped and the attendance sent with
    safeguarding_concern False. The validated model and the reading disagree. Expected: True, or a
    dead letter. Severity: HIGH for the old feeds the doc says still map."""
    attendance = encounter(extension=[{"url": LEGACY + "safeguarding-concern", "valueBoolean": value}])
    (fields, _error), = results(bundle(patient(), attendance))
    assert fields is None or fields["safeguarding_concern"] is True


@pytest.mark.parametrize("how", ["diagnosis", "reasonReference", "observation-value"])
def test_a_safeguarding_concept_linked_from_the_encounter_counts(how: str) -> None:
    """R4 links an Encounter to its Conditions by Encounter.diagnosis.condition and
    Encounter.reasonReference (the Condition need not carry `encounter`), and an Observation
    usually codes the question in `code` and the finding in `valueCodeableConcept`. The reader only
    looks at Condition/Observation.encounter and .code, so all three carry a listed ECDS safeguarding
    concept and the attendance is sent with safeguarding_concern False. A gap in the documented rules
    rather than the code, but the standard is that a safeguarding concern is never silently missed.
    Severity: MEDIUM-HIGH."""
    plain = encounter(reasonCode=[{"text": "Burn"}])
    condition = concern_condition(id="cond-1")
    del condition["encounter"]
    if how == "diagnosis":
        resources = [encounter(reasonCode=[{"text": "Burn"}],
                               diagnosis=[{"condition": {"reference": "Condition/cond-1"}}]), condition]
    elif how == "reasonReference":
        resources = [encounter(reasonCode=[{"text": "Burn"}],
                               reasonReference=[{"reference": "Condition/cond-1"}]), condition]
    else:
        resources = [plain, {"resourceType": "Observation", "status": "final",
                             "subject": {"reference": "Patient/MRN1"}, "encounter": {"reference": "Encounter/enc-1"},
                             "code": {"text": "Safeguarding assessment"},
                             "valueCodeableConcept": {"coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN}]}}]
    assert one(patient(), *resources)["safeguarding_concern"] is True


def test_an_old_nhs_number_is_never_the_one_linked_on() -> None:
    """nhs_number() ignores Identifier.use (and period). A superseded NHS number kept as `use: old`
    (e.g. after a mistrace was corrected) that still carries status 01 is listed first and wins the
    stable sort, so the attendance links on the old number - possibly another child's. Severity:
    HIGH (wrong link) where systems keep the old identifier."""
    old = {**nhs("9434765870"), "use": "old"}
    assert nhs_number(patient(identifier=[old, nhs("9434765919")])) == ("9434765919", True)


@pytest.mark.parametrize("text", [
    "safeguarding_concerns: ['836881000000105']\n",  # misspelt key
    "safeguarding_concern:\n  - code: '836881000000105'\n    display: Child is cause for safeguarding concern\n",
    "",  # an empty file
    "safeguarding_concern: [null, yes]\n",
], ids=["misspelt-key", "list-of-mappings", "empty", "null-and-bool"])
def test_a_code_list_in_the_wrong_shape_is_refused(tmp_path: Path, text: str) -> None:
    """The deployment's list replaces the shipped one. load_codes() accepts any mapping: a misspelt
    key gives an empty safeguarding set, a list of {code, display} mappings gives the strings
    "{'code': ...}", an empty file gives nothing, null gives 'None'. The connector starts and every
    safeguarding concern is silently read as none. The doc says an unreadable list stops the
    connector at start; a list that cannot mean anything should too. Severity: MEDIUM-HIGH."""
    path = tmp_path / "codes.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"codes\.yaml"):
        load_codes(path)


@pytest.mark.xfail(strict=True, reason="DEFECT: two Encounters with one id are sent as one attendance id")
def test_two_encounters_with_one_id_are_not_sent_as_one_attendance() -> None:
    """Duplicate Encounter ids (a resend appended, or a generator bug): both become events with
    attendance_id 'enc-1' (the same source_record_id, so the later replaces or duplicates the first
    downstream) and a Condition `Encounter/enc-1` is given only to the first. Every Encounter should
    end in exactly one distinct outcome: expected a dead letter for the ambiguity. Severity: MEDIUM."""
    first = encounter(reasonCode=[{"text": "Burn"}])
    second = encounter(reasonCode=[{"text": "Fall"}], period={"start": "2026-11-06T00:00:00Z"})
    sent = [f for f, e in results(bundle(patient(), first, second, concern_condition())) if f is not None]
    ids = [f["attendance_id"] for f in sent]
    assert len(ids) == len(set(ids))


def test_a_malformed_entry_is_a_dead_letter_not_silently_dropped() -> None:
    """_Index skips any entry that is not a dict with a dict `resource`. `{"resource": [Encounter]}` (an
    Encounter wrapped in a list) or a bare string entry disappears: no event, no dead letter, and the
    file goes to done/. Nothing is lost is the standard. Severity: LOW-MEDIUM."""
    document = bundle(patient(), encounter())
    document["entry"] += [{"fullUrl": "urn:uuid:e9", "resource": [encounter(id="enc-9")]}, "junk"]
    outcomes = results(document)
    assert len(outcomes) >= 2 and any(error for _, error in outcomes)


def test_reading_a_bundle_costs_linear_time_in_its_encounters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Encounter calls about('Flag') and recorded_in(), which resolve() the subject/encounter of
    every entry of the Bundle: O(encounters x entries). Measured on this machine (2 cores): a Bundle of
    N patients + N encounters + N flags takes 0.50 s at N=500, 1.7 s at 1,000, 8.0 s at 2,000 and 33 s
    at 5,000 (6.6 ms per encounter); the 64 MB document limit admits ~30,000, i.e. ~20 minutes of one
    core for one hostile file, during which the connector reads nothing else. Here: resolve() calls
    for N and 2N must grow ~2x (they grow ~4x). Severity: MEDIUM (denial of service)."""
    calls = {"n": 0}
    original = fhir._Index.resolve

    def counting(self: Any, *args: Any) -> Any:
        calls["n"] += 1
        return original(self, *args)

    monkeypatch.setattr(fhir._Index, "resolve", counting)
    monkeypatch.setattr(fhir, "invalid", lambda resource: None)  # count the joins, not pydantic

    def cost(n: int) -> int:
        calls["n"] = 0
        entries = []
        for i in range(n):
            entries += [(f"urn:uuid:p-{i}", patient(id=f"P{i}")),
                        (f"urn:uuid:e-{i}", encounter(id=f"e{i}", subject={"reference": f"Patient/P{i}"})),
                        (f"urn:uuid:f-{i}", cp_is_flag(subject={"reference": f"Patient/P{i}"}))]
        assert all(error is None for _, error in results(entries_bundle(*entries)))
        return calls["n"]

    small, large = cost(100), cost(200)
    assert large <= 2.5 * small, f"resolve() calls: {small} for 100 encounters, {large} for 200"


def test_a_childs_flags_are_validated_once_not_once_per_encounter(monkeypatch: pytest.MonkeyPatch) -> None:
    """record() validates the Patient and all its Flags for each Encounter. A Bundle of one child with
    N attendances and N flags costs N^2 validations: measured 2.6 s at N=200, 11 s at 400, 50 s at
    800 (62 ms per encounter), so ~30 minutes at N=5,000. Here: N=30 must not take more than ~4N
    validations. Severity: MEDIUM (denial of service by one hostile file)."""
    calls = {"n": 0}
    original = fhir.invalid

    def counting(resource: dict[str, Any]) -> str | None:
        calls["n"] += 1
        return original(resource)

    monkeypatch.setattr(fhir, "invalid", counting)
    n = 30
    resources = [patient()] + [encounter(id=f"e{i}") for i in range(n)] + [cp_is_flag() for _ in range(n)]
    assert all(error is None for _, error in results(bundle(*resources)))
    assert calls["n"] <= 4 * n, f"{calls['n']} validations for {n} encounters and {n} flags"


def test_an_address_that_begins_after_the_attendance_is_not_current() -> None:
    """current() only checks period.end. A Bundle sent after the family moved lists the new home
    (period.start 2027-01-01) first; for an attendance in November 2026 the reader sends the future
    address, not the one the child lived at (which is listed second, ending 2026-12-31). Wrong
    address on a safeguarding record; also feeds probabilistic matching. Severity: LOW-MEDIUM."""
    child = patient(address=[
        {"use": "home", "line": ["Future Road"], "postalCode": "ZZ1 1ZZ", "period": {"start": "2027-01-01"}},
        {"use": "home", "line": ["1 Current Road"], "postalCode": "LS6 2QT",
         "period": {"start": "2020-01-01", "end": "2026-12-31"}}])
    assert one(child, encounter())["postcode"] == "LS6 2QT"


def test_a_null_given_name_is_refused_with_a_clear_reason() -> None:
    """fhir.resources accepts `given: [null, "Amelia"]`; " ".join() raises TypeError, caught as
    "Encounter 'enc-1' is missing sequence item 0: expected str instance, NoneType found" - wrong
    ("missing") and unhelpful to whoever fixes the feed. Expected: a reason naming Patient.name.given
    (or the null skipped). Not lost - a dead letter. Severity: LOW."""
    (fields, error), = results(bundle(patient(name=[{"use": "official", "given": [None, "Amelia"],
                                                      "family": "Hughes"}]), encounter()))
    assert fields is not None or "given" in str(error)


# =========================================================================================================
# SURVIVED: attacks the reader withstands (guards)
# =========================================================================================================

def test_a_flag_on_another_child_with_the_same_id_is_placed_by_full_url() -> None:
    a_url, b_url = "urn:uuid:aaaaaaaa-0000-4000-8000-000000000000", "urn:uuid:bbbbbbbb-0000-4000-8000-000000000000"
    document = entries_bundle((a_url, patient()), (b_url, other_patient(id="MRN2")),
                              ("urn:uuid:e1", encounter(id="e1", subject={"reference": a_url})),
                              ("urn:uuid:e2", encounter(id="e2", subject={"reference": b_url})),
                              ("urn:uuid:f1", cp_is_flag(subject={"reference": b_url})))
    (a, a_error), (b, b_error) = results(document)
    assert a_error is None and b_error is None and a is not None and b is not None
    assert (a["nhs_number"], a["child_protection_flag"]) == ("9434765919", False)
    assert (b["nhs_number"], b["child_protection_flag"]) == ("9434765870", True)


def test_an_absolute_full_url_reference_finds_exactly_that_patient() -> None:
    document = entries_bundle(("https://a.example/fhir/Patient/MRN1", patient()),
                              ("https://b.example/fhir/Patient/MRN2", other_patient(id="MRN2")),
                              ("urn:uuid:e3", encounter(subject={"reference": "https://b.example/fhir/Patient/MRN2"})))
    (fields, error), = results(document)
    assert error is None and fields is not None and fields["nhs_number"] == "9434765870"


@pytest.mark.parametrize("reference", ["#p1", "urn:uuid:00000002-0000-4000-8000-000000000000", "Flag/f1"])
def test_a_reference_to_a_contained_or_wrong_type_resource_is_a_dead_letter(reference: str) -> None:
    """A contained Patient is not indexed, and a reference to a Flag is not a Patient: both are a dead
    letter with the reference in the reason, never a join to something else."""
    contained = patient(id="p1")
    attendance = encounter(contained=[contained], subject={"reference": reference})
    (fields, error), = results(bundle(patient(), attendance, cp_is_flag(id="f1")))
    assert fields is None and "references no Patient" in str(error) and reference in str(error)


def test_a_bad_encounter_fails_alone_and_every_encounter_has_one_outcome(tmp_path: Path) -> None:
    """class as a list, a string valueBoolean that cannot mean true/false, a lone surrogate, a huge
    integer, deep extension nesting: each its own dead letter; the good ones are read."""
    deep: dict[str, Any] = {"url": "http://x/leaf", "valueString": "x"}
    for _ in range(300):
        deep = {"url": "http://x/n", "extension": [deep]}
    hostile = [
        encounter(id="class-list", **{"class": [{"code": "EMER"}]}),
        encounter(id="bool", extension=[{"url": LEGACY + "safeguarding-concern", "valueBoolean": "maybe"}]),
        encounter(id="surrogate", reasonCode=[{"text": "\ud800"}]),
        encounter(id="huge", extension=[{"url": "http://x", "valueInteger": 10 ** 300}]),
        encounter(id="deep", extension=[deep]),
    ]
    path = write(tmp_path, bundle(patient(), encounter(id="good-1"), *hostile, encounter(id="good-2")))
    records = list(fhir_bundle(path))
    assert len(records) == 7 and not any(r.position.get("document") for r in records)
    assert [r.error is None for r in records] == [True, False, False, False, False, False, True]
    assert all("not valid FHIR R4" in str(r.error) for r in records[1:6])


@pytest.mark.parametrize("entry", [5, "abc", None])
def test_a_bundle_whose_entry_is_not_a_list_is_one_document_dead_letter(tmp_path: Path, entry: Any) -> None:
    path = write(tmp_path, {"resourceType": "Bundle", "type": "collection", "entry": entry})
    (record,) = list(fhir_bundle(path))
    assert record.error is not None and record.fields is None


def test_a_period_ending_on_the_attendance_day_is_current() -> None:
    flag = cp_is_flag(period={"start": "2026-01-01", "end": "2026-11-05"})
    assert one(patient(), encounter(), flag)["child_protection_flag"] is True
    ended_day_before = cp_is_flag(period={"start": "2026-01-01", "end": "2026-11-04T23:59:59Z"})
    assert one(patient(), encounter(), ended_day_before)["child_protection_flag"] is False


def test_an_ended_official_name_gives_way_and_several_officials_take_the_current_one() -> None:
    names = [{"use": "official", "given": ["Old"], "family": "Name", "period": {"end": "2025-01-01"}},
             {"use": "official", "given": ["Amelia"], "family": "Hughes"},
             {"use": "official", "given": ["Second"], "family": "Official"}]
    fields = one(patient(name=names), encounter())
    assert (fields["given_name"], fields["family_name"]) == ("Amelia", "Hughes")
    ended_only = [{"use": "official", "given": ["Old"], "family": "Name", "period": {"end": "2025-01-01"}},
                  {"use": "usual", "given": ["Millie"], "family": "Hughes"}]
    assert one(patient(name=ended_only), encounter())["given_name"] == "Millie"


def test_an_empty_given_name_is_a_dead_letter_in_the_models_words() -> None:
    (fields, error), = results(bundle(patient(name=[{"use": "official", "given": ["", "Amelia"]}]), encounter()))
    assert fields is None and "name.0.given.0" in str(error)


def test_an_nhs_number_with_spaces_is_verified_and_normalised() -> None:
    fields = one(patient(identifier=[nhs("943 476 5919")]), encounter())
    subject = mapped_subject(fields)
    assert subject["nhs_number"] == "9434765919" and subject["nhs_number_status"] == "VALID"


@pytest.mark.parametrize("identifier", [nhs("9434765919", "1"), nhs("9434765919", "01", "http://example.org/x"),
                                        nhs("9434765919", "02"), {**nhs("9434765919", None)}])
def test_a_number_without_status_01_in_uk_cores_system_is_never_linked_on(identifier: dict[str, Any]) -> None:
    fields = one(patient(identifier=[identifier]), encounter())
    subject = mapped_subject(fields)
    assert subject["nhs_number_status"] == "UNVERIFIED"
    assert "nhs" not in {i.scheme for i in identifiers_of(subject, "HEALTH")}


def test_a_verified_number_beats_a_different_unverified_one_in_either_order() -> None:
    for identifiers in ([nhs("9434765870", "02"), nhs("9434765919")], [nhs("9434765919"), nhs("9434765870", None)]):
        assert nhs_number(patient(identifier=identifiers)) == ("9434765919", True)


def test_a_condition_of_another_encounter_or_a_flag_of_another_child_does_not_count() -> None:
    other_encounter = encounter(id="enc-2", reasonCode=[{"text": "Fall"}])
    fields = [f for f, _ in results(bundle(patient(), encounter(reasonCode=[{"text": "Burn"}]), other_encounter,
                                           concern_condition(encounter={"reference": "Encounter/enc-2"})))]
    assert [f and f["safeguarding_concern"] for f in fields] == [False, True]
    elsewhere = cp_is_flag(subject={"reference": "urn:uuid:99999999-0000-4000-8000-000000000000"})
    (flag, flag_error), (placed, error) = results(bundle(patient(), encounter(), elsewhere))
    assert flag is None and "cannot be placed" in str(flag_error)  # its own dead letter, never lost
    assert error is None and placed is not None and placed["child_protection_flag"] is False


def test_a_presenting_complaint_only_coded_is_read_from_its_display() -> None:
    coded = encounter(reasonCode=[{"coding": [{"system": SCT, "code": "82271004", "display": "Injury of head"}]}])
    assert one(patient(), coded)["presenting_complaint"] == "Injury of head"


def test_code_ids_written_as_yaml_integers_match_like_strings(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: [836881000000105]\ninjury_pattern_concern: {999999999: Local}\n"
                    "child_protection: []\n")
    codes = load_codes(path)
    assert CHILD_IS_CAUSE_FOR_CONCERN in codes.safeguarding_concern and "999999999" in codes.injury_pattern_concern
    attendance = encounter(reasonCode=[{"text": "x", "coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN}]}])
    (_, fields, error), = encounter_records(bundle(patient(), attendance), codes)
    assert error is None and fields is not None and fields["safeguarding_concern"] is True


def test_a_code_list_that_is_a_directory_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the FHIR code list"):
        load_codes(tmp_path)


def test_a_malformed_cp_is_flag_on_the_child_fails_the_encounter() -> None:
    broken = copy.deepcopy(cp_is_flag())
    broken["category"] = {"coding": "CP-IS"}
    (fields, error), = results(bundle(patient(), encounter(), broken))
    assert fields is None and "Flag" in str(error)
