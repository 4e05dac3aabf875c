"""The health connector reads emergency department attendances as HL7 FHIR UK Core records them.

Each test builds a UK Core-shaped Bundle (docs/mappings/health.md) and checks one mapping rule.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from connectors.health.connector import HealthConnector
from connectors.registry import build_connector
from connectors.sdk.fhir import encounter_records
from connectors.sdk.uk_core import load_codes
from services.enrichment.linking import identifiers_of

VERIFICATION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
STATUS_ENGLAND = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
SCT = "http://snomed.info/sct"
CHILD_IS_CAUSE_FOR_CONCERN = "836881000000105"


def nhs(value: str, status: str | None = "01") -> dict[str, Any]:
    identifier: dict[str, Any] = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": value}
    if status:
        identifier["extension"] = [{"url": VERIFICATION, "valueCodeableConcept": {
            "coding": [{"system": STATUS_ENGLAND, "code": status}]}}]
    return identifier


def patient(**changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Patient", "id": "MRN1", "identifier": [nhs("9434765919")],
        "name": [{"use": "usual", "given": ["Millie"], "family": "Hughes"},
                 {"use": "official", "given": ["Amelia", "Rose"], "family": "Hughes"},
                 {"use": "nickname", "given": ["Mimi"]}],
        "gender": "female", "birthDate": "2016-04-12",
        "address": [{"use": "old", "line": ["9 Former Road"], "postalCode": "LS1 1AA"},
                    {"use": "home", "line": ["2 Past Street"], "postalCode": "LS2 2BB",
                     "period": {"start": "2015-01-01", "end": "2024-06-30"}},
                    {"use": "work", "line": ["Office"], "postalCode": "LS3 3CC"},
                    {"use": "home", "line": ["1 Current Road"], "postalCode": "LS6 2QT",
                     "period": {"start": "2024-07-01"}}],
    }
    resource.update(changes)
    return resource


def encounter(**changes: Any) -> dict[str, Any]:
    resource = {
        "resourceType": "Encounter", "id": "enc-1", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
        "period": {"start": "2026-11-05T02:15:00Z"},
        "reasonCode": [{"text": "Head injury, fall down stairs"},
                       {"coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN,
                                    "display": "Child is cause for safeguarding concern"}]}],
        "serviceProvider": {"identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RR801"}},
    }
    resource.update(changes)
    return resource


CP_IS_FLAG = {"resourceType": "Flag", "status": "active",
              "category": [{"coding": [{"system": "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory",
                                        "code": "CP-IS"}]}],
              "code": {"coding": [{"system": SCT, "code": "342191000000101",
                                   "display": "Subject to child protection plan"}]},
              "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}}


def bundle(*resources: dict[str, Any], patient_url: str = "urn:uuid:11111111-1111-4111-8111-111111111111") -> dict:
    first = next(n for n, r in enumerate(resources) if r["resourceType"] == "Patient")
    entries = [{"fullUrl": patient_url if n == first else f"urn:uuid:{n:08d}-0000-4000-8000-000000000000",
                "resource": r} for n, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def read(*resources: dict[str, Any], **kwargs: Any) -> list[tuple[dict[str, Any] | None, str | None]]:
    return [(fields, error) for _, fields, error in encounter_records(bundle(*resources, **kwargs))]


def mapped(fields: dict[str, Any]) -> Any:
    """The health connector's mapping of one flat record (subject with its identifier checks, payload)."""
    return build_connector("health", Path(tempfile.gettempdir())).map(fields)


def one(*resources: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    (fields, error), = read(*resources, **kwargs)
    assert error is None, error
    assert fields is not None
    return fields


def test_a_uk_core_attendance_maps_whole_where_it_was_dead_lettered_before() -> None:
    """The issue's case: official and usual names, an old and a current address, a verified NHS
    number, a CP-IS flag coded in SNOMED CT, no project-specific extension."""
    fields = one(patient(), encounter(), CP_IS_FLAG)
    assert (fields["given_name"], fields["family_name"]) == ("Amelia Rose", "Hughes")
    assert (fields["address"], fields["postcode"]) == ("1 Current Road", "LS6 2QT")
    assert fields["nhs_number"] == "9434765919" and fields["nhs_number_verified"] is True
    assert fields["safeguarding_concern"] is True and fields["child_protection_flag"] is True
    assert fields["presenting_complaint"] == "Head injury, fall down stairs" and fields["site_code"] == "RR801"
    event = mapped(fields)
    assert event.payload["safeguarding_concern"] is True and event.payload["child_protection_flag"] is True


def test_the_usual_name_is_taken_when_there_is_no_official_one_and_a_nickname_never() -> None:
    usual = one(patient(name=[{"use": "nickname", "given": ["Mimi"]},
                              {"use": "usual", "given": ["Millie"], "family": "Hughes"}]), encounter())
    assert usual["given_name"] == "Millie"
    nickname_only = one(patient(name=[{"use": "nickname", "given": ["Mimi"]},
                                      {"use": "old", "given": ["Amy"], "family": "Smith"}]), encounter())
    assert nickname_only["given_name"] is None and nickname_only["family_name"] is None


def test_an_old_or_ended_or_work_address_is_never_the_childs_home() -> None:
    fields = one(patient(address=[{"use": "old", "line": ["9 Former Road"], "postalCode": "LS1 1AA"},
                                  {"use": "home", "line": ["2 Past Street"], "postalCode": "LS2 2BB",
                                   "period": {"end": "2024-06-30"}},
                                  {"use": "work", "line": ["Office"], "postalCode": "LS3 3CC"}]), encounter())
    assert fields["address"] is None and fields["postcode"] is None
    no_use = one(patient(address=[{"line": ["5 Plain Road"], "postalCode": "LS4 4DD"}]), encounter())
    assert no_use["postcode"] == "LS4 4DD"


@pytest.mark.parametrize(("status", "verified"), [("01", True), ("02", False), ("03", False), ("04", False),
                                                   (None, False)])
def test_only_a_verified_nhs_number_is_trusted_for_linking(status: str | None, verified: bool) -> None:
    fields = one(patient(identifier=[nhs("9434765919", status)]), encounter())
    assert fields["nhs_number"] == "9434765919" and fields["nhs_number_verified"] is verified
    subject = mapped(fields).subject
    assert subject["nhs_number"] == "9434765919"  # kept and marked, never dropped
    assert subject["nhs_number_status"] == ("VALID" if verified else "UNVERIFIED")
    schemes = {i.scheme for i in identifiers_of(subject, "HEALTH")}
    assert ("nhs" in schemes) is verified


def test_a_verified_number_wins_over_an_unverified_one_and_a_bad_check_digit_stays_invalid() -> None:
    fields = one(patient(identifier=[nhs("9434765870", "02"), nhs("9434765919", "01")]), encounter())
    assert (fields["nhs_number"], fields["nhs_number_verified"]) == ("9434765919", True)
    mistyped = one(patient(identifier=[nhs("9434765918", "01")]), encounter())
    subject = mapped(mistyped).subject
    assert subject["nhs_number_status"] == "INVALID"


@pytest.mark.parametrize("reference", ["Patient/MRN1", "Patient/MRN1/_history/3",
                                       "urn:uuid:11111111-1111-4111-8111-111111111111"])
def test_the_patient_is_found_by_full_url_or_by_id(reference: str) -> None:
    fields = one(patient(), encounter(subject={"reference": reference}))
    assert fields["mrn"] == "MRN1"


def test_a_safeguarding_concern_is_read_from_ecds_snomed_codes_anywhere_in_the_encounter() -> None:
    plain = encounter(reasonCode=[{"text": "Burn to forearm"}])
    assert one(patient(), plain)["safeguarding_concern"] is False
    other_code = encounter(reasonCode=[{"text": "Burn", "coding": [{"system": SCT, "code": "125666000"}]}])
    assert one(patient(), other_code)["safeguarding_concern"] is False
    by_type = encounter(reasonCode=[{"text": "Burn"}],
                        type=[{"coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN}]}])
    assert one(patient(), by_type)["safeguarding_concern"] is True
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/MRN1"},
                 "encounter": {"reference": "Encounter/enc-1"},
                 "code": {"coding": [{"system": SCT, "code": CHILD_IS_CAUSE_FOR_CONCERN}]}}
    assert one(patient(), plain, condition)["safeguarding_concern"] is True
    wrong_system = encounter(reasonCode=[{"text": "Burn", "coding": [{"system": "http://example.org/local",
                                                                      "code": CHILD_IS_CAUSE_FOR_CONCERN}]}])
    assert one(patient(), wrong_system)["safeguarding_concern"] is False


def test_the_code_list_is_the_deployments_own(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: {'999999999': Local concept}\ninjury_pattern_concern: ['888888888']\n"
                    "child_protection: []\n")
    codes = load_codes(path)
    attendance = encounter(reasonCode=[{"text": "Fall", "coding": [{"system": SCT, "code": "999999999"},
                                                                   {"system": SCT, "code": "888888888"}]}])
    (_, fields, error), = encounter_records(bundle(patient(), attendance), codes)
    assert error is None and fields is not None
    assert fields["safeguarding_concern"] is True and fields["injury_pattern_concern"] is True
    (_, shipped, _), = encounter_records(bundle(patient(), encounter()), codes)
    assert shipped is not None and shipped["safeguarding_concern"] is False  # the shipped code is not in this list


def test_an_unreadable_code_list_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: 12\n")
    with pytest.raises(ValueError, match=r"codes\.yaml.*safeguarding_concern"):
        load_codes(path)
    from connectors.sdk.sources.file_drop import FileDropConfig
    with pytest.raises(ValueError, match=r"codes\.yaml"):
        FileDropConfig(inbox=tmp_path, format="fhir", fhir_codes=path)


def test_only_an_active_current_cp_is_flag_on_this_child_counts() -> None:
    assert one(patient(), encounter(), {**CP_IS_FLAG, "status": "inactive"})["child_protection_flag"] is False
    ended = {**CP_IS_FLAG, "period": {"start": "2020-01-01", "end": "2025-01-01"}}
    assert one(patient(), encounter(), ended)["child_protection_flag"] is False
    other_child = {**CP_IS_FLAG, "subject": {"reference": "Patient/SOMEONE-ELSE"}}
    (_, unplaced), (fields, error) = read(patient(), encounter(), other_child)
    assert "cannot be placed" in str(unplaced) and error is None and fields is not None
    assert fields["child_protection_flag"] is False
    by_code_only = {**CP_IS_FLAG, "category": []}
    assert one(patient(), encounter(), by_code_only)["child_protection_flag"] is True
    not_cp = {**CP_IS_FLAG, "category": [{"coding": [{"system": "https://fhir.nhs.uk/England/CodeSystem/"
                                                                "PatientFlagCategory", "code": "NRAF"}]}],
              "code": {"coding": [{"system": SCT, "code": "1082681000000103"}]}}
    assert one(patient(), encounter(), not_cp)["child_protection_flag"] is False


def test_a_bundle_in_todays_shape_still_maps() -> None:
    base = "https://fhir.mash.example/StructureDefinition/"
    old = encounter(reasonCode=[{"text": "Burn"}],
                    extension=[{"url": base + "safeguarding-concern", "valueBoolean": True},
                               {"url": base + "injury-pattern-concern", "valueBoolean": True}])
    legacy_flag = {"resourceType": "Flag", "status": "active", "subject": {"reference": "Patient/MRN1"},
                   "code": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/cp-is", "code": "CPP"}]}}
    fields = one(patient(name=[{"family": "Hughes", "given": ["Amelia"]}]), old, legacy_flag)
    assert fields["given_name"] == "Amelia" and fields["safeguarding_concern"] is True
    assert fields["injury_pattern_concern"] is True and fields["child_protection_flag"] is True


def test_the_ods_code_comes_from_the_referenced_organization_too() -> None:
    organization = {"resourceType": "Organization", "id": "org-1",
                    "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": "RXX01"}]}
    fields = one(patient(), encounter(serviceProvider={"reference": "Organization/org-1"}), organization)
    assert fields["site_code"] == "RXX01"


def test_a_resource_that_is_not_valid_fhir_fails_only_its_own_encounter_with_the_models_words() -> None:
    bad_patient = patient(id="MRN2", birthDate="2016-13-45")
    second = encounter(id="enc-2", subject={"reference": "Patient/MRN2"})
    unknown_field = encounter(id="enc-3", mood="cheerful")
    results = read(patient(), encounter(), bad_patient, second, unknown_field)
    assert results[0][1] is None
    assert results[1][0] is None and "Patient 'MRN2' is not valid FHIR R4: birthDate" in str(results[1][1])
    assert results[2][0] is None and "mood" in str(results[2][1]) and "not permitted" in str(results[2][1])


def test_a_malformed_cp_is_flag_is_a_dead_letter_not_a_missed_flag() -> None:
    broken = copy.deepcopy(CP_IS_FLAG)
    broken["status"] = ["active"]
    (fields, error), = read(patient(), encounter(), broken)
    assert fields is None and "Flag" in str(error) and "not valid FHIR R4" in str(error)


def test_the_shipped_sample_is_uk_core_shaped_and_maps() -> None:
    sample = json.loads(HealthConnector.sample.read_text())
    for entry in sample["entry"]:
        resource = entry["resource"]
        assert not any("fhir.mash.example/StructureDefinition/safeguarding" in e.get("url", "")
                       for e in resource.get("extension", []))
    mapped = [f for _, f, e in encounter_records(sample) if e is None]
    assert len(mapped) == 8 and all(f is not None and f["nhs_number_verified"] for f in mapped)
    assert sum(bool(f and f["child_protection_flag"]) for f in mapped) == 1


def test_the_injury_intent_of_maltreatment_maps_from_the_deployments_code_or_the_site_extension(
        tmp_path: Path) -> None:
    """ECDS records an injury's intent; a maltreatment intent (the history says a parent or carer
    caused it) is `maltreatment_alleged`. No SNOMED CT concept for it is shipped, so the shipped list
    finds none; a deployment's code list or the site's boolean extension does."""
    path = tmp_path / "codes.yaml"
    path.write_text("safeguarding_concern: []\nmaltreatment_alleged: {'777777777': Local maltreatment intent}\n")
    coded = encounter(reasonCode=[{"text": "Bruising", "coding": [{"system": SCT, "code": "777777777"}]}])
    (_, fields, error), = encounter_records(bundle(patient(), coded), load_codes(path))
    assert error is None and fields is not None and fields["maltreatment_alleged"] is True
    assert one(patient(), coded)["maltreatment_alleged"] is False  # not in the shipped list
    base = "https://fhir.mash.example/StructureDefinition/"
    said = encounter(extension=[{"url": base + "maltreatment-alleged", "valueBoolean": True}])
    assert one(patient(), said)["maltreatment_alleged"] is True
    assert one(patient(), encounter())["maltreatment_alleged"] is False
    (_, error), = read(patient(), encounter(extension=[{"url": base + "maltreatment-alleged", "valueBoolean": "yes"}]))
    assert "maltreatment-alleged" in str(error)  # "yes" is not a FHIR boolean: refused, never read as false
