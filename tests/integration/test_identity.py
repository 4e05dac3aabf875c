"""Identity through the real broker: a later event proves two persons one child, and their
alerts are re-keyed to the survivor, one open alert per child."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.synth.generate import generate
from mash.models import (
    AlertRecord,
    LinkDecisionRecord,
    Person,
    PersonIdentifier,
    PersonMerge,
    RecordIdentifier,
    RecordLink,
)
from mash.pipeline_counts import PipelineCounts, count
from mash.settings import PROJECT_ROOT, Settings
from mash.topics import AGENCIES
from tests.integration.conftest import env_for, mash, publish_record, wait_for
from tests.support.bus import deployment_acls
from tests.unit.test_correlation import MECHANICS_SCORING

KAI = {"forename": "Kai", "surname": "Dunn", "sex": "M", "incident_type": "CHILD_AT_RISK", "child_role": "VICTIM",
       "children_present": True, "risk_grading": "MEDIUM", "summary": None, "consent": "NOT_SOUGHT"}
KAI_CASE = {"first_name": "Kai", "last_name": "Dunn", "gender": "M", "case_reference": "C-9", "kind": "REFERRAL",
            "referral_source": "School", "plan_category": None, "detail": None, "consent": "GIVEN"}
NHS, UPN = "9434765919", "B801200005001"


@pytest.fixture(autouse=True)
def mechanics_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub workers score with the frozen weights these tests were written with
    (tests/support/scoring_mechanics.yaml: CHILD_AT_RISK alone alerts): they test linking and
    re-keying, not the calibrated ratings."""
    monkeypatch.setenv("MASH_TRIAGE_SCORING", str(MECHANICS_SCORING))


def police(n: int, person_ref: str, nhs: str | None, dob: str, postcode: str, day: int) -> dict[str, Any]:
    """A police report that alone raises no alert (no risk indicator): only joined with another agency."""
    return {**KAI, "incident_type": "MISSING_EPISODE", "child_role": "OTHER",
            "ppn_id": f"PPN-M-{n}", "person_ref": person_ref, "nhs_number": nhs, "dob": dob,
            "postcode": postcode, "incident_ref": f"1{n}", "occurred_at": f"2026-11-{day:02d}T10:00:00Z"}


def case(n: int, nhs: str | None, upn: str, day: int) -> dict[str, Any]:
    return {**KAI_CASE, "case_event_id": f"LCS-M-{n}", "lcs_person_id": "LCS-KAI", "nhs_number": nhs, "upn": upn,
            "dob": "2013-02-02", "postcode": "LS1 1AA", "occurred_at": f"2026-11-{day:02d}T10:00:00Z"}


def publish(settings: Settings, tmp_path: Path, agency: str, record: dict[str, Any]) -> str:
    return str(publish_record(settings, tmp_path, agency, record)["event_id"])


def decided(settings: Settings, engine: Engine, events: int) -> Callable[[], bool]:
    def check() -> bool:
        counts = count(settings.bootstrap_servers, settings, engine)
        return counts.accounted and sum(counts.outcomes.values()) == events
    return check


def start_worker(env: dict[str, str], stages: str, log_path: Path) -> Popen[bytes]:
    with log_path.open("wb") as log:
        return Popen([sys.executable, "-m", "mash.cli", "hub", "worker", "--stages", stages, "--loglevel", "info"],
                     env=env, cwd=PROJECT_ROOT, stdout=log, stderr=STDOUT)


def person_of(engine: Engine, event_id: str) -> str:
    with engine.connect() as db:
        return str(db.scalar(select(LinkDecisionRecord.person_id).where(LinkDecisionRecord.event_id == event_id)))


def test_a_merge_re_keys_the_retired_persons_open_alert_to_the_survivor(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    hub_worker()
    # B: police without an NHS number, then social care with a UPN: one person by their details,
    # two agencies within days, so an alert.
    b_police = publish(provisioned, tmp_path, "police", police(1, "WYP-B", None, "2013-02-02", "LS1 1AA", 2))
    wait_for(decided(provisioned, engine, 1), what="B's police event")
    b_case = publish(provisioned, tmp_path, "social_care", case(2, None, UPN, 3))
    # A: police with an NHS number, a different date of birth and address: another child, so far.
    a_police = publish(provisioned, tmp_path, "police", police(3, "WYP-A", NHS, "2013-08-30", "LS99 9ZZ", 4))
    wait_for(decided(provisioned, engine, 3), what="A's police event and B's case event")
    a, b = person_of(engine, a_police), person_of(engine, b_police)
    assert a != b and person_of(engine, b_case) == b
    with engine.connect() as db:
        assert db.scalars(select(AlertRecord.person_id)).all() == [b]

    # Social care now records the NHS number too: A and B are one child.
    proof = publish(provisioned, tmp_path, "social_care", case(4, NHS, UPN, 5))

    def rekeyed() -> list[tuple[str, str, list[str]]] | None:
        with engine.connect() as db:
            rows = db.execute(select(AlertRecord.person_id, AlertRecord.status, AlertRecord.event_ids)).all()
        open_alerts = [r for r in rows if r.status == "OPEN"]
        if len(open_alerts) == 1 and open_alerts[0].person_id == a and all(r.person_id == a for r in rows) \
                and {b_police, b_case, a_police, proof} <= set(open_alerts[0].event_ids):
            return [tuple(r) for r in rows]  # type: ignore[misc]
        return None

    wait_for(rekeyed, what="the alert to move to the surviving person with every event")
    assert person_of(engine, proof) == a
    with engine.connect() as db:
        merge = db.execute(select(PersonMerge)).one()
    assert (merge.retired_person_id, merge.surviving_person_id, merge.event_id) == (b, a, proof)


def test_two_enrichment_workers_racing_over_partitions_give_each_child_one_person(
    provisioned: Settings, engine: Engine, tmp_path: Path
) -> None:
    """Events of one child arrive on several agencies' topics and partitions, so two enrichment
    workers in one group link them at the same time; the identifier key makes the loser retry and
    join the winner. (Sharing and triage run in a worker of their own.)"""
    feed = tmp_path / "feed"
    generate(feed, 1500, seed=21)
    enrichment = provisioned.model_copy(update={"app_id": f"{provisioned.app_id}-enrichment"})
    with deployment_acls(enrichment):  # its consumer groups are named from its own app id
        race(provisioned, enrichment, engine, feed, tmp_path)


def race(provisioned: Settings, enrichment: Settings, engine: Engine, feed: Path, tmp_path: Path) -> None:
    enrichment_env = {**env_for(provisioned), "MASH_APP_ID": enrichment.app_id}
    workers = [start_worker(enrichment_env, "enrichment", tmp_path / f"enrichment-{n}.log") for n in range(2)]
    workers.append(start_worker(env_for(provisioned), "sharing,triage", tmp_path / "triage.log"))
    try:
        for agency in AGENCIES:
            mash(provisioned, "connector", "run", agency, "--synth", str(feed))

        def decided_all() -> PipelineCounts | None:
            counts = count(provisioned.bootstrap_servers, provisioned, engine)
            return counts if counts.inbound_events > 1000 and \
                sum(counts.outcomes.values()) == counts.inbound_events else None

        counts = wait_for(decided_all, what="every event to be linked and decided")
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(timeout=60)
    lines = (feed / "truth" / "events.jsonl").read_text().splitlines()
    child_of_record = {row["record_id"]: row["person"] for row in map(json.loads, lines)}
    with engine.connect() as db:
        merged = {p: m for p, m in db.execute(select(Person.person_id, Person.merged_into)) if m}
        decided = dict(db.execute(select(LinkDecisionRecord.event_id, LinkDecisionRecord.person_id)).all())
        truth = {e: child_of_record[r] for e, r in db.execute(select(LinkDecisionRecord.event_id,
                                                                     LinkDecisionRecord.record_id))}
        nhs_owner = dict(db.execute(select(PersonIdentifier.value, PersonIdentifier.person_id)
                                    .where(PersonIdentifier.scheme == "nhs")).all())
        nhs_given = db.execute(select(RecordIdentifier.value, RecordLink.person_id)  # each record's number, its person
                               .join(RecordLink, RecordLink.record_id == RecordIdentifier.record_id)
                               .where(RecordIdentifier.scheme == "nhs")).all()

    def survivor(person_id: str) -> str:
        while person_id in merged:
            person_id = merged[person_id]
        return person_id

    persons_of_child: dict[int, set[str]] = {}
    for event_id, person_id in decided.items():
        persons_of_child.setdefault(truth[event_id], set()).add(survivor(person_id))
    children_of_person: dict[str, set[int]] = {}
    for child, persons in persons_of_child.items():
        for person in persons:
            children_of_person.setdefault(person, set()).add(child)
    assert len(decided) == counts.inbound_events
    assert all(len(children) == 1 for children in children_of_person.values())  # no wrong link under the race
    # every record that gives an NHS number stands with the child who owns it (merges followed)
    astray = [(value, person) for value, person in nhs_given
              if value not in nhs_owner or survivor(person) != survivor(nhs_owner[value])]
    assert nhs_given and astray == [], f"{len(astray)} of {len(nhs_given)} records not with their NHS number's owner"
    split = sum(1 for persons in persons_of_child.values() if len(persons) > 1)
    assert split <= 0.02 * len(persons_of_child)  # the few the matcher cannot join, not the race
