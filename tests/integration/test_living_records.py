"""Living records through the real broker and hub worker: an agency sends a record again changed
(re-graded, consent withdrawn, entered in error) and the hub revises what it holds, never rolling
back to an older revision; a decision covers the alert revision the person saw."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from subprocess import Popen
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer
from sqlalchemy import Engine, select

from mash.codec import Codec
from mash.db import session_factory
from mash.models import AlertRecord, EventOutcomeRecord, LinkDecisionRecord, TimelineEventRecord
from mash.pipeline_counts import count
from mash.settings import Settings
from mash.topics import DECISIONS, topic_name
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import User
from services.triage_app.queue import alert_page
from services.triage_app.views import visible_event
from tests.integration.conftest import publish_record, wait_for
from tests.support.bus import operator_client
from tests.unit.test_correlation import MECHANICS_SCORING


@pytest.fixture(autouse=True)
def mechanics_scoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are of how records live (revisions, withdrawals, decisions), written with the
    frozen weights of tests/support/scoring_mechanics.yaml (CHILD_AT_RISK 30, police HIGH 80 more):
    the hub workers they start score with them (MASH_TRIAGE_SCORING), not the calibrated scoring."""
    monkeypatch.setenv("MASH_TRIAGE_SCORING", str(MECHANICS_SCORING))


def ppn(ppn_id: str, child: str, grading: str, updated_at: str | None, *, day: int = 10,
        incident_type: str = "CHILD_AT_RISK", status: str | None = None) -> dict[str, Any]:
    """A police PPN about one of the test's children (each child its own name, birth date and reference).
    CHILD_AT_RISK alone scores 30 (a GREEN alert); graded HIGH it scores 110 (RED)."""
    forename, dob = {"A": ("Ava", "2014-03-03"), "B": ("Ben", "2012-06-16"), "C": ("Cara", "2016-09-21")}[child]
    return {"ppn_id": ppn_id, "person_ref": f"WYP-LR-{child}", "nhs_number": None, "forename": forename,
            "surname": "Lowe", "dob": dob, "sex": "F", "postcode": f"LS{ord(child) - 60} 1AA",
            "incident_ref": f"INC-{ppn_id}", "incident_type": incident_type, "child_role": "VICTIM",
            "children_present": True, "risk_grading": grading, "occurred_at": f"2026-11-{day:02d}T10:00:00Z",
            "summary": "Police attended.", "consent": "NOT_SOUGHT", "updated_at": updated_at,
            **({"record_status": status} if status else {})}


def case(consent: str, updated_at: str) -> dict[str, Any]:
    return {"case_event_id": "LCS-LR-1", "lcs_person_id": "LCS-LR-DEE", "nhs_number": None, "upn": None,
            "first_name": "Dee", "last_name": "Marsh", "dob": "2013-05-05", "gender": "F", "postcode": "LS7 2BB",
            "case_reference": "C-LR-1", "kind": "REFERRAL", "referral_source": "School", "plan_category": None,
            "occurred_at": "2026-11-12T11:15:00Z", "detail": "Concern raised by the school.", "consent": consent,
            "updated_at": updated_at}


publish = publish_record


def decided(settings: Settings, engine: Engine, events: int) -> Callable[[], bool]:
    """Every event sent so far has its outcome and the hub has committed all its input (decisions too)."""
    def check() -> bool:
        counts = count(settings.bootstrap_servers, settings, engine)
        return counts.accounted and sum(counts.outcomes.values()) == events
    return check


def outcome(engine: Engine, event_id: str) -> Any:
    """The event's outcome row (outcome, kind, record_id, alert_id)."""
    with engine.connect() as db:
        return db.execute(select(EventOutcomeRecord).where(EventOutcomeRecord.event_id == event_id)).one()


def person_of(engine: Engine, event_id: str) -> str:
    with engine.connect() as db:
        return str(db.scalar(select(LinkDecisionRecord.person_id).where(LinkDecisionRecord.event_id == event_id)))


def alerts_of(engine: Engine, person_id: str) -> list[Any]:
    with engine.connect() as db:
        return list(db.execute(select(AlertRecord).where(AlertRecord.person_id == person_id)
                               .order_by(AlertRecord.opened_at)).all())


def test_a_re_graded_ppn_revises_its_record_and_raises_the_childs_alert_to_red(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    hub_worker()
    first = publish(provisioned, tmp_path, "police", ppn("PPN-LR-A", "A", "STANDARD", "2026-11-10T12:00:00Z"))
    control = publish(provisioned, tmp_path, "police", ppn("PPN-LR-C", "C", "HIGH", "2026-11-10T12:00:00Z"))
    wait_for(decided(provisioned, engine, 2), what="A's first grading and the control")
    a, c = person_of(engine, first["event_id"]), person_of(engine, control["event_id"])
    assert a != c
    assert [r.rag for r in alerts_of(engine, a)] == ["GREEN"]  # CHILD_AT_RISK graded STANDARD: 30

    regraded = publish(provisioned, tmp_path, "police", ppn("PPN-LR-A", "A", "HIGH", "2026-11-11T09:00:00Z"))
    # changed content: a revision of the same record, not a duplicate
    assert regraded["record_id"] == first["record_id"] and regraded["event_id"] != first["event_id"]
    wait_for(decided(provisioned, engine, 3), what="A's re-grading")

    assert person_of(engine, regraded["event_id"]) == a
    alert, = alerts_of(engine, a)
    assert (alert.status, alert.rag, alert.review) == ("OPEN", "RED", None)
    assert regraded["event_id"] in alert.event_ids and "police-high-risk" in alert.indicators
    assert (outcome(engine, regraded["event_id"]).kind, outcome(engine, first["event_id"]).kind) == ("REVISION", "NEW")
    assert outcome(engine, regraded["event_id"]).record_id == first["record_id"]
    control_alert, = alerts_of(engine, c)
    assert (control_alert.rag, list(control_alert.event_ids)) == ("RED", [control["event_id"]])
    assert outcome(engine, control["event_id"]).kind == "NEW"
    with session_factory(engine)() as session:  # the timeline says what the revision changed
        page = alert_page(session, User("mo", "Mo", "triage_manager", "triage_manager"), alert.alert_id,
                          load_scoring(MECHANICS_SCORING), datetime.now(UTC))
    amended = {e.event_id: e.amended for e in page.timeline}
    assert amended[regraded["event_id"]] == "police amended: risk grading STANDARD -> HIGH"


def test_an_older_revision_arriving_after_a_newer_one_is_stale_and_changes_nothing(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    hub_worker()
    newer = publish(provisioned, tmp_path, "police", ppn("PPN-LR-B", "B", "HIGH", "2026-11-11T09:00:00Z"))
    wait_for(decided(provisioned, engine, 1), what="the newer revision")
    person = person_of(engine, newer["event_id"])
    before, = alerts_of(engine, person)

    older = publish(provisioned, tmp_path, "police", ppn("PPN-LR-B", "B", "STANDARD", "2026-11-10T12:00:00Z"))
    assert older["record_id"] == newer["record_id"] and older["event_id"] != newer["event_id"]
    wait_for(decided(provisioned, engine, 2), what="the older revision, late")

    assert outcome(engine, older["event_id"]).outcome == "STALE_REVISION"
    assert outcome(engine, newer["event_id"]).outcome == "ALERT_RAISED"
    alert, = alerts_of(engine, person)
    assert (alert.status, alert.rag, alert.review, alert.revision) == ("OPEN", "RED", None, before.revision)
    assert list(alert.event_ids) == [newer["event_id"]]
    with engine.connect() as db:
        superseded = dict(db.execute(select(TimelineEventRecord.event_id, TimelineEventRecord.superseded_by)
                                     .where(TimelineEventRecord.record_id == newer["record_id"])).all())
    assert superseded == {newer["event_id"]: None, older["event_id"]: newer["event_id"]}  # the newer stands


def _dotted(values: dict[str, Any], allowed: set[str], prefix: str = "") -> list[str]:
    """The fields of nested `values` that no name in `allowed` covers (read as the store prunes)."""
    outside = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if name in allowed:
            continue
        outside.extend(_dotted(value, allowed, f"{name}.") if isinstance(value, dict) else [name])
    return outside


def test_consent_withdrawn_takes_the_fields_out_of_the_earlier_revisions_timeline_row(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    """The default policy shares a social care case event with consent GIVEN (in full to the social
    worker and manager, the child's status to partners) and nothing at all with consent REFUSED
    unless the child is on a plan or looked after (this child is neither): so every field of the
    earlier row must go, from every role's view and from its values."""
    hub_worker()
    given = publish(provisioned, tmp_path, "social_care", case("GIVEN", "2026-11-12T12:00:00Z"))
    wait_for(decided(provisioned, engine, 1), what="the case event with consent given")
    with engine.connect() as db:
        shared = db.execute(select(TimelineEventRecord).where(TimelineEventRecord.event_id == given["event_id"])).one()
    assert shared.views["mash_social_worker"] and shared.views["mash_police_officer"]
    assert "payload.detail" in shared.views["mash_social_worker"]
    assert orjson.loads(shared.values)["payload"]["detail"] == "Concern raised by the school."

    refused = publish(provisioned, tmp_path, "social_care", case("REFUSED", "2026-11-13T09:00:00Z"))
    assert refused["record_id"] == given["record_id"] and refused["event_id"] != given["event_id"]
    wait_for(decided(provisioned, engine, 2), what="the same record with consent refused")

    with engine.connect() as db:
        rows = {r.event_id: r for r in db.execute(select(TimelineEventRecord)
                                                  .where(TimelineEventRecord.record_id == given["record_id"])).all()}
    assert set(rows) == {given["event_id"], refused["event_id"]}
    earlier, later = rows[given["event_id"]], rows[refused["event_id"]]
    assert (earlier.superseded_by, later.superseded_by) == (refused["event_id"], None)
    assert earlier.superseded_at is not None
    assert outcome(engine, refused["event_id"]).kind == "REVISION"
    for role, fields in earlier.views.items():
        assert set(fields) <= set(later.views.get(role, ())), f"{role} still sees {sorted(set(fields))}"
    latest_fields = {f for fields in later.views.values() for f in fields}
    assert _dotted(orjson.loads(earlier.values), latest_fields) == []
    assert set(shared.views["mash_social_worker"]) - latest_fields  # fields did disappear: the test saw a change
    # ...and in their place the row says when: the social worker saw the detail here, until the 13th
    assert earlier.withdrawn_fields["mash_social_worker"]["payload.detail"] == "2026-11-13"
    row = visible_event(earlier.event_id, earlier.event_type, earlier.source_agency, earlier.occurred_at,
                        orjson.loads(earlier.values), earlier.views, "mash_social_worker", earlier.withdrawn_fields)
    assert ("payload.detail", "2026-11-13") in row.withdrawn_fields and not row.withheld
    never = visible_event(earlier.event_id, earlier.event_type, earlier.source_agency, earlier.occurred_at,
                          orjson.loads(earlier.values), earlier.views, "mash_police_officer", earlier.withdrawn_fields)
    assert "payload.detail" not in dict(never.withdrawn_fields)  # a role that never saw it is told nothing


def test_a_decision_on_an_earlier_alert_revision_leaves_what_attached_since_in_a_follow_up_alert(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    hub_worker()
    seen = publish(provisioned, tmp_path, "police", ppn("PPN-LR-D1", "A", "HIGH", None, day=10))
    wait_for(decided(provisioned, engine, 1), what="the event the person will see")
    person = person_of(engine, seen["event_id"])
    decided_alert, = alerts_of(engine, person)
    assert (decided_alert.revision, decided_alert.rag, list(decided_alert.event_ids)) == (1, "RED", [seen["event_id"]])

    later = publish(provisioned, tmp_path, "police",
                    ppn("PPN-LR-D2", "A", "MEDIUM", None, day=12, incident_type="DOMESTIC_ABUSE"))
    wait_for(decided(provisioned, engine, 2), what="the event attaching while the person decides")
    attached, = alerts_of(engine, person)
    assert attached.revision == 2 and later["event_id"] in attached.event_ids

    decision = {"decision_id": str(uuid.uuid4()), "alert_id": decided_alert.alert_id, "person_id": person,
                "outcome": "STRATEGY_DISCUSSION_S47", "rationale": "High-risk PPN: strategy discussion.",
                "decided_by": "tester", "decided_role": "triage_manager", "rag_at_decision": "RED",
                "decided_at": datetime.now(UTC), "audit_ref": "p0:1", "alert_revision": 1}
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    producer.send(topic_name(DECISIONS, provisioned), key=person.encode(),
                  value=Codec().encode(decision, "uk.mash.hub.TriageDecision"))
    producer.flush()
    producer.close()

    def closing() -> list[Any] | None:  # the follow-up is written in the same transaction
        rows = alerts_of(engine, person)
        return rows if any(r.status == "CLOSED" for r in rows) else None

    rows = wait_for(closing, timeout_s=120, what="the hub to close the decided alert")
    wait_for(decided(provisioned, engine, 2), what="the hub to commit the decision")
    assert len(rows) == 2, [(r.alert_id, r.status, r.event_ids) for r in rows]
    closed = next(r for r in rows if r.alert_id == decided_alert.alert_id)
    follow = next(r for r in rows if r.alert_id != decided_alert.alert_id)
    assert (closed.status, list(closed.event_ids)) == ("CLOSED", [seen["event_id"]])  # what the person saw
    assert (follow.status, follow.follows, list(follow.event_ids)) == ("OPEN", decided_alert.alert_id,
                                                                       [later["event_id"]])
    assert follow.rag == "RED"  # new information on a child just judged to need attention


def test_a_withdrawn_high_risk_ppn_asks_for_the_alert_to_be_reviewed(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    hub_worker()
    high = publish(provisioned, tmp_path, "police", ppn("PPN-LR-W", "C", "HIGH", "2026-11-10T12:00:00Z"))
    wait_for(decided(provisioned, engine, 1), what="the high-risk PPN")
    person = person_of(engine, high["event_id"])
    before, = alerts_of(engine, person)
    assert (before.rag, before.review) == ("RED", None)

    withdrawal = publish(provisioned, tmp_path, "police",
                         ppn("PPN-LR-W", "C", "HIGH", "2026-11-11T08:00:00Z", status="ENTERED_IN_ERROR"))
    assert withdrawal["withdrawn"] and withdrawal["record_id"] == high["record_id"]
    wait_for(decided(provisioned, engine, 2), what="the withdrawal")

    assert outcome(engine, withdrawal["event_id"]).kind == "WITHDRAWAL"
    alert, = alerts_of(engine, person)
    assert (alert.status, alert.rag) == ("OPEN", "RED")  # the rating stands: lowering it is a person's decision
    assert alert.review is not None and "withdrawn (entered in error)" in alert.review
    assert alert.revision > before.revision
    with engine.connect() as db:
        withdrawn = db.scalar(select(TimelineEventRecord.withdrawn)
                              .where(TimelineEventRecord.event_id == withdrawal["event_id"]))
    assert withdrawn is True


def test_a_decision_on_a_child_retired_by_a_merge_closes_the_survivors_alert(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path
) -> None:
    """Two police subjects, each with a RED alert, are proved one child (a third report carries one's
    reference and the other's NHS number). The decision a person made on the retired child's alert
    before the merge reaches the hub after it: the survivor's alert closes, and what the person had
    not seen opens a follow-up; nothing stays open and hidden under the retired person."""
    hub_worker()
    nhs = "9434765919"
    seen = publish(provisioned, tmp_path, "police", {**ppn("PPN-LR-M1", "A", "HIGH", None, day=10),
                                                     "person_ref": "WYP-LR-M1"})
    other = publish(provisioned, tmp_path, "police", {**ppn("PPN-LR-M2", "B", "HIGH", None, day=11),
                                                      "person_ref": "WYP-LR-M2", "nhs_number": nhs})
    wait_for(decided(provisioned, engine, 2), what="two children, each with an alert")
    retired, survivor = person_of(engine, seen["event_id"]), person_of(engine, other["event_id"])
    assert retired != survivor
    (decided_alert,) = alerts_of(engine, retired)

    proof = publish(provisioned, tmp_path, "police", {**ppn("PPN-LR-M3", "A", "STANDARD", None, day=12),
                                                      "person_ref": "WYP-LR-M1", "nhs_number": nhs})
    wait_for(decided(provisioned, engine, 3), what="the report proving them one child")
    assert person_of(engine, proof["event_id"]) == survivor  # the NHS number's owner survives

    decision = {"decision_id": str(uuid.uuid4()), "alert_id": decided_alert.alert_id, "person_id": retired,
                "outcome": "STRATEGY_DISCUSSION_S47", "rationale": "High-risk PPN: strategy discussion.",
                "decided_by": "tester", "decided_role": "triage_manager", "rag_at_decision": "RED",
                "decided_at": datetime.now(UTC), "audit_ref": "p0:1", "alert_revision": decided_alert.revision}
    producer = KafkaProducer(**operator_client(provisioned), acks="all")
    producer.send(topic_name(DECISIONS, provisioned), key=retired.encode(),
                  value=Codec().encode(decision, "uk.mash.hub.TriageDecision"))
    producer.flush()
    producer.close()

    def closed_for_survivor() -> list[Any] | None:
        rows = alerts_of(engine, survivor)
        return rows if any(r.status == "CLOSED" for r in rows) else None

    rows = wait_for(closed_for_survivor, timeout_s=120, what="the hub to close the survivor's alert")
    wait_for(decided(provisioned, engine, 3), what="the hub to commit the decision")
    rows = alerts_of(engine, survivor)
    open_rows = [r for r in rows if r.status == "OPEN"]
    assert len(open_rows) == 1, [(r.alert_id, r.status, list(r.event_ids)) for r in rows]
    follow_up = open_rows[0]
    assert seen["event_id"] not in follow_up.event_ids  # what the person decided on stays decided
    assert other["event_id"] in follow_up.event_ids and follow_up.follows is not None
    assert all(r.status != "OPEN" for r in alerts_of(engine, retired))  # nothing left open and hidden
    with engine.connect() as db:  # the survivor's timeline holds the retired child's events too
        owners = dict(db.execute(select(TimelineEventRecord.event_id, TimelineEventRecord.person_id)).all())
    assert owners[seen["event_id"]] == owners[other["event_id"]] == survivor
