"""Writes the synthetic feed in each reference connector's own source format, and the truth.

police: JSON lines files for its inbox; health: FHIR R4 Bundles for its inbox; education: a
SQLite copy of the school system's database (the sample's schema and views); social care: JSON
lines of records to push. `truth/` says which events are the same child, which children should
raise an alert, and the rating each should have (`rag_rules`, from the facts of their episodes).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, TextIO

from connectors.registry import CONNECTORS
from connectors.sdk.contract import EVENT_ID_NAMESPACE, record_id_of
from connectors.sdk.uk_core import (
    FLAG_CATEGORY_SYSTEM,
    LEGACY_EXTENSION_BASE,
    NHS_NUMBER_SYSTEM,
    ODS_SYSTEM,
    SNOMED,
    VERIFICATION_EXTENSION,
    VERIFIED,
)
from connectors.synth.feed import Event, rating, unreported
from connectors.synth.population import Child
from connectors.synth.render import (
    ID_FIELD,
    RENDERERS,
    rng_for,
    strip_identifiers,
    tells_of_concern,
    without_strong_identifiers,
)

RECORDS_PER_FILE = {"police": 10_000, "health": 500, "social_care": 1_000}


def write_feed(out: Path, seed: int, children: list[Child], events: list[Event],
               progress: Callable[[int], None] | None = None, missing_identifiers: float = 0.0) -> dict[str, int]:
    by_person = {c.person: c for c in children}
    counts: dict[str, int] = defaultdict(int)
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[str, _Writer] = {"police": _JsonLines(out / "police" / "inbox", "ppn"),
               "social_care": _JsonLines(out / "social_care" / "push", "push"),
               "health": _Bundles(out / "health" / "inbox"),
               "education": _SchoolDatabase(out / "education" / "school.db")}
    silent: set[tuple[str, int]] = set()  # records of an episode that tell no one of a concern
    with (truth_dir / "events.jsonl").open("w") as truth:
        for n, event in enumerate(events, start=1):
            child = by_person[event.person]
            record = RENDERERS[event.agency](child, event, rng_for(seed, event))
            strip_identifiers(record, seed, event, without_strong_identifiers(missing_identifiers))
            revise(record, event, child)
            writers[event.agency].add(record, event)
            if event.facts is not None and not tells_of_concern(event.agency, record):
                silent.add((event.agency, event.record_no))
            counts[event.agency] += 1
            _truth(truth, event, child, record[ID_FIELD[event.agency]], record_scope(event.agency, record))
            if progress and n % 50_000 == 0:
                progress(n)
    for writer in writers.values():
        writer.close()
    _children_truth(truth_dir / "children.jsonl", children, events, silent)
    return dict(counts)


def revise(record: dict[str, Any], event: Event, child: Child) -> None:
    """Police and social care say when they last changed a record (its revisions' order; a
    resubmission carries the stamp it was first sent with); a revision is the record as first
    sent, changed."""
    if event.agency not in ("police", "social_care"):
        return
    record["updated_at"] = (event.revised or event.received).isoformat().replace("+00:00", "Z")
    if event.change == "REGRADED":
        record["risk_grading"] = "HIGH"
    elif event.change == "CONSENT_WITHDRAWN":
        record["consent"] = "REFUSED"
    elif event.change == "CORRECTED":
        record["nhs_number"] = child.nhs
    elif event.change == "WITHDRAWN":
        record["record_status"] = "ENTERED_IN_ERROR"


def record_id(agency: str, source_record_id: str, scope: str = "") -> str:
    """The record id the agency's connector will give this record (each revision's event id is
    its record id and its content)."""
    return record_id_of(CONNECTORS[agency].source_system, source_record_id, scope)


def record_scope(agency: str, record: dict[str, Any]) -> str:
    """Where the connector finds the record, as it namespaces record ids (`Connector.record_scope`):
    the school system's view a concern is polled from (a feed's checkpoints start fresh, so scoped);
    "" for the file drops and the push."""
    if agency != "education":
        return ""
    return "mash_safeguarding" if record["concern_kind"] == "SAFEGUARDING_CONCERN" else "mash_attendance"


def _truth(handle: TextIO, event: Event, child: Child, source_record_id: str, scope: str = "") -> None:
    handle.write(json.dumps({"record_id": record_id(event.agency, source_record_id, scope), "agency": event.agency,
                             "source_record_id": source_record_id, "person": child.person,
                             "household": child.household, "occurred_at": event.occurred.isoformat(),
                             "resubmission": event.resubmission, "change": event.change,
                             "episode": event.episode}) + "\n")


def _children_truth(path: Path, children: list[Child], events: list[Event], silent: set[tuple[str, int]]) -> None:
    per_child: dict[int, list[Event]] = defaultdict(list)
    for event in events:
        per_child[event.person].append(event)
    with path.open("w") as handle:
        for child in children:
            mine = per_child.get(child.person, [])
            truth = rating(mine, silent)
            episodes = {e.episode: e.facts for e in mine if e.facts is not None}
            handle.write(json.dumps({"person": child.person, "household": child.household,
                                     "events": len(mine), "should_alert": truth.rag is not None, "rag": truth.rag,
                                     "rules": list(truth.rules), "unreported_rag": unreported(mine, silent).rag,
                                     "episodes": [asdict(episodes[n]) for n in sorted(episodes)]}) + "\n")


class _Writer(Protocol):
    def add(self, record: dict[str, Any], event: Event) -> None: ...

    def close(self) -> None: ...


class _JsonLines:
    def __init__(self, folder: Path, stem: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.stem, self.count = folder, stem, 0
        self.handle: TextIO | None = None
        self.limit = RECORDS_PER_FILE["police" if stem == "ppn" else "social_care"]

    def add(self, record: dict[str, Any], _event: Event) -> None:
        if self.handle is None or self.count % self.limit == 0:
            self.close()
            self.handle = (self.folder / f"{self.stem}-{self.count // self.limit + 1:05d}.jsonl").open("w")
        assert self.handle is not None
        self.handle.write(json.dumps(record) + "\n")
        self.count += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class _Bundles:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.files = folder, 0
        self.entries: list[dict[str, Any]] = []
        self.encounters = 0

    def add(self, record: dict[str, Any], _event: Event) -> None:
        self.entries.extend(_fhir_entries(record))
        self.encounters += 1
        if self.encounters % RECORDS_PER_FILE["health"] == 0:
            self.close()

    def close(self) -> None:
        if self.entries:
            self.files += 1
            bundle = {"resourceType": "Bundle", "type": "collection", "entry": self.entries}
            (self.folder / f"ed-{self.files:05d}.fhir.json").write_text(json.dumps(bundle))
            self.entries = []


def _fhir_entries(r: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One attendance as an ED system following UK Core writes it (docs/mappings/health.md)."""
    patient_ref = f"urn:uuid:{uuid.uuid5(EVENT_ID_NAMESPACE, r['attendance_id'] + '/patient')}"
    verified = {"url": VERIFICATION_EXTENSION, "valueCodeableConcept": {"coding": [
        {"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": VERIFIED,
         "display": "Number present and verified"}]}}
    identifiers = ([{"system": NHS_NUMBER_SYSTEM, "value": r["nhs_number"], "extension": [verified]}]
                   if r["nhs_number"] else [])
    yield {"fullUrl": patient_ref, "resource": {
        "resourceType": "Patient", "id": r["mrn"], "identifier": identifiers,
        "name": [{"use": "official", "family": r["family_name"], "given": [r["given_name"]]}], "gender": r["gender"],
        "birthDate": r["birth_date"],
        "address": [{"use": "home", "line": [r["address"]], "postalCode": r["postcode"]}]}}
    concern = ([{"coding": [{"system": SNOMED, "code": "836881000000105",
                             "display": "Child is cause for safeguarding concern"}]}]
               if r["safeguarding_concern"] else [])
    yield {"resource": {
        "resourceType": "Encounter", "id": r["attendance_id"], "status": "finished",
        "identifier": [{"value": r["attendance_id"]}],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": patient_ref}, "period": {"start": r["arrived_at"]},
        "reasonCode": [{"text": r["presenting_complaint"]}, *concern],
        "serviceProvider": {"identifier": {"system": ODS_SYSTEM, "value": r["site_code"]}},
        "hospitalization": {"dischargeDisposition": {"text": r["discharge_destination"]}},
        # no SNOMED CT concept for either is shipped (connectors/sdk/fhir_codes.yaml): the site's extensions
        "extension": [{"url": LEGACY_EXTENSION_BASE + "injury-pattern-concern",
                       "valueBoolean": r["injury_pattern_concern"]},
                      {"url": LEGACY_EXTENSION_BASE + "maltreatment-alleged",
                       "valueBoolean": r["maltreatment_alleged"]}]}}
    if r["child_protection_flag"]:
        yield {"resource": {"resourceType": "Flag", "status": "active", "subject": {"reference": patient_ref},
                            "category": [{"coding": [{"system": FLAG_CATEGORY_SYSTEM, "code": "CP-IS"}]}],
                            "code": {"coding": [{"system": SNOMED, "code": "342191000000101",
                                                 "display": "Subject to child protection plan"}]}}}


class _SchoolDatabase:
    """The school system's tables and the connector's views, from the shipped sample's schema."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        schema = CONNECTORS["education"].sample.read_text().split("\nINSERT", 1)[0]
        self.db = sqlite3.connect(path)
        self.db.executescript(schema)
        self.pupils: set[str] = set()
        self.n = 0

    def add(self, r: dict[str, Any], event: Event) -> None:
        if r["pupil_id"] not in self.pupils:
            self.pupils.add(r["pupil_id"])
            self.db.execute("INSERT INTO pupils VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (r["pupil_id"], r["upn"], r["nhs_number"], r["forename"], r["surname"], r["dob"],
                             r["sex"], r["postcode"]))
        updated = event.received.strftime("%Y-%m-%d %H:%M:%S.%f")
        number = event.record_no
        table = "safeguarding_concerns" if r["concern_kind"] == "SAFEGUARDING_CONCERN" else "attendance_alerts"
        key = "concern_id" if table == "safeguarding_concerns" else "alert_id"
        if event.resubmission:  # in a database, a resubmission is the same row touched again
            self.db.execute(f"UPDATE {table} SET updated_at = ? WHERE {key} = ?", (updated, number))  # noqa: S608
            return
        if table == "safeguarding_concerns":
            self.db.execute("INSERT INTO safeguarding_concerns VALUES (?, ?, ?, ?, ?, ?)",
                            (number, r["pupil_id"], r["safeguarding_category"], r["detail"], r["logged_at"], updated))
        else:
            self.db.execute("INSERT INTO attendance_alerts VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (number, r["pupil_id"], r["concern_kind"], r["attendance_percent"],
                             r["previous_attendance_percent"], r["logged_at"], updated))
        self.n += 1
        if self.n % 10_000 == 0:
            self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()
