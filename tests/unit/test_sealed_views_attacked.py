"""`mash audit verify`'s check of what the triage pages show (`sealed_views`), attacked.

Each test drives the real write paths (the triage store's `apply_in` sealed as the triage stage
seals it, the app's actions) on a SQLite file, then changes rows as the processes' database role
could, and asks `sealed_views.check` what it names. Tests whose docstring says "was a defect" failed
before their fix. The rest are defences that held (no false alarm on legitimate operation, or the attack named).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import CursorResult, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mash.db import make_engine, session_factory
from mash.models import AlertRecord, Base
from services.sharing import sealed_values
from services.sharing.audit_signing import AuditKeys
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage_app import actions, sealed_views
from services.triage_app.accounts import User
from services.triage_store import sealed_alerts
from services.triage_store.store import apply_in
from tests.support.triage_data import NOW, add_users, alert, shared

KEYS = AuditKeys.of(b"k" * 48)
ALICE = User("alice", "Alice", "triage_worker", "mash_social_worker")
MO = User("mo", "Mo", "triage_manager", "triage_manager")
RAPID = load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml")
CHAIN = sealed_alerts.chain_for("t.mash.shared.v1", 0)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'mash.db'}")
    Base.metadata.create_all(engine)
    actions.sign_with(KEYS)
    made = session_factory(engine)
    add_users(made)
    yield made
    engine.dispose()


def _hub(sessions: sessionmaker[Session], *alerts: dict[str, Any]) -> None:
    """What the triage stage does with a batch's alert revisions: store them, seal what was written."""
    with sessions.begin() as session:  # its events on the timeline, as triage writes them beside it
        stored = apply_in(session, [{k: v for k, v in a.items() if k != "_events"} for a in alerts], [],
                          [e for a in alerts for e in a.get("_events", ())])
        sealed_alerts.seal_revisions(session, KEYS, CHAIN, stored)


def _new_alert(rag: str = "AMBER", opened: datetime = NOW) -> dict[str, Any]:
    event = {**shared("p1", "police.public_protection_notification", "POLICE", opened, {}, {}),
             "event_id": "00000000-0000-4000-8000-0000000000e1"}
    events = [event]
    return {**alert("00000000-0000-4000-8000-0000000000aa", rag, events, opened, opened + timedelta(hours=6),
                 opened + timedelta(hours=4), 60, ["police-medium-risk"], ["police graded it medium (+30)"]),
            "_events": events}


def _revised(first: dict[str, Any], revision: int, rag: str, score: int) -> dict[str, Any]:
    return {**first, "revision": revision, "rag": rag, "score": score, "reasons": [f"revision {revision}"],
            "updated_at": first["updated_at"] + revision * 60_000,
            "due_at": first["due_at"] - revision * 60_000, "at_risk_at": first["at_risk_at"] - revision * 60_000}


def _check(sessions: sessionmaker[Session]) -> list[str]:
    """What verify names of the queue and its history. The timeline rows written here stand in for the
    events the alerts name, without the sharing entries that release them: the timeline itself is
    attacked through the real sharing stage in tests/integration."""
    with sessions() as session:
        return [m for m in sealed_views.check(session, KEYS).mismatches if not m.startswith("timeline event")]


def _sql(sessions: sessionmaker[Session], statement: str, **params: Any) -> int:
    with sessions.begin() as session:
        return int(cast(CursorResult[Any], session.execute(text(statement), params)).rowcount)


# ---------------------------------------------------------------- defences that held: no false alarm

def test_an_untouched_store_after_claims_rerating_and_a_decision_passes(sessions: sessionmaker[Session]) -> None:
    first = _new_alert()
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "GREEN", "seen the school", NOW + timedelta(minutes=2), RAPID)
    actions.decide(sessions, ALICE, first["alert_id"], "EARLY_HELP", "family support", NOW + timedelta(minutes=3))
    assert _check(sessions) == []


def test_a_hub_revision_after_a_person_rerated_keeps_their_rating_and_passes(sessions: sessionmaker[Session]) -> None:
    first = _new_alert()
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "GREEN", "seen the school", NOW + timedelta(minutes=2), RAPID)
    _hub(sessions, _revised(first, 2, "AMBER", 70))  # not more urgent: the person's GREEN stands
    with sessions() as session:
        row = session.get(AlertRecord, first["alert_id"])
        assert row is not None and (row.rag, row.hub_rag, row.revision) == ("GREEN", "AMBER", 2)
    assert _check(sessions) == []


def test_the_hub_escalating_over_a_persons_rating_passes(sessions: sessionmaker[Session]) -> None:
    first = _new_alert()
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "GREEN", "seen the school", NOW + timedelta(minutes=2), RAPID)
    _hub(sessions, _revised(first, 2, "RED", 120))
    with sessions() as session:
        row = session.get(AlertRecord, first["alert_id"])
        assert row is not None and (row.rag, row.rag_set_by) == ("RED", None)
    assert _check(sessions) == []


def test_a_rerating_without_a_profile_then_a_redelivered_revision_passes(sessions: sessionmaker[Session]) -> None:
    first = _new_alert()
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "RED", "police call", NOW + timedelta(minutes=2), None)
    _hub(sessions, first)  # redelivered: nothing written, nothing sealed
    _hub(sessions, _revised(first, 2, "AMBER", 70), _revised(first, 2, "AMBER", 70))  # the same in one batch twice
    assert _check(sessions) == []


def test_unicode_reasons_round_trip(sessions: sessionmaker[Session]) -> None:
    first = {**_new_alert(), "reasons": ["école — signalement 🚸", "Zoë's \"quoted\" note"]}
    _hub(sessions, first)
    assert _check(sessions) == []


# ---------------------------------------------------------------- defences that held: attacks named

def test_a_rating_lowered_under_a_hub_revision_is_named(sessions: sessionmaker[Session]) -> None:
    first = _new_alert("RED")
    _hub(sessions, first)
    _sql(sessions, "UPDATE alerts SET rag = 'GREEN', rag_rank = 2")
    assert any("rating" in m for m in _check(sessions))


def test_a_person_rating_forged_without_a_rerating_is_named(sessions: sessionmaker[Session]) -> None:
    first = _new_alert("RED")
    _hub(sessions, first)
    _sql(sessions, "UPDATE alerts SET rag = 'GREEN', rag_rank = 2, hub_rag = 'RED', rag_set_by = 'alice'")
    assert any("no sealed re-rating records" in m for m in _check(sessions))


# ---------------------------------------------------------------- defects

def test_an_alert_deleted_from_the_queue_is_named(sessions: sessionmaker[Session]) -> None:
    """Was a defect (fixed): sealed_views.check only walks the rows present: an alert row DELETEd by the processes'
    role vanishes from the queue and nothing is named, though its sealed revisions and history are in the trail"""
    first = _new_alert("RED")
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    assert _sql(sessions, "DELETE FROM alerts WHERE alert_id = :a", a=first["alert_id"]) == 1
    assert _check(sessions) != []


def test_a_red_alert_sunk_down_the_queue_by_its_rank_is_named(sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed: rag_rank (the queue's ORDER BY, with its LIMIT) is in no seal: a RED alert given rank 99
    sinks below every GREEN one (off a full page of the queue) unnamed"""
    first = _new_alert("RED")
    _hub(sessions, first)
    assert _sql(sessions, "UPDATE alerts SET rag_rank = 99") == 1
    assert _check(sessions) != []


def test_an_alert_rolled_back_to_an_earlier_sealed_revision_is_named(sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed: sealed_views._check_alert checks a row against the seal of the revision the row itself
    names: rolling the whole row back to an earlier sealed revision (the hub's escalation to RED undone, its older
    deadline back) matches that revision's seal"""
    first = _new_alert("AMBER")
    _hub(sessions, first)
    with sessions() as session:
        row = session.get(AlertRecord, first["alert_id"])
        assert row is not None
        before = {c.name: getattr(row, c.key) for c in AlertRecord.__table__.columns}
    _hub(sessions, _revised(first, 2, "RED", 150))
    with sessions.begin() as session:
        row = session.get(AlertRecord, first["alert_id"])
        assert row is not None and row.rag == "RED"
        for column, value in before.items():
            setattr(row, column, value)
    with sessions() as session:
        assert session.get(AlertRecord, first["alert_id"]).rag == "AMBER"  # type: ignore[union-attr]
    assert _check(sessions) != []


def test_the_hubs_escalation_over_a_persons_rating_undone_is_named(sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed: sealed_alerts.differences accepts any row that looks like a person's rating kept over
    the hub's (rag_set_by, hub_rag = the hub's sealed rating, the re-rating's clock) without checking
    store._revision_over's rule: the hub's escalation to RED over a person's GREEN can be rewritten back to GREEN
    with the old deadline, unnamed"""
    first = _new_alert("AMBER")
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], NOW + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "GREEN", "seen the school", NOW + timedelta(minutes=2), RAPID)
    with sessions() as session:
        kept = session.get(AlertRecord, first["alert_id"])
        assert kept is not None
        person = (kept.rag, kept.rag_rank, kept.rag_set_by, kept.rag_set_at, kept.due_at, kept.at_risk_at)
    _hub(sessions, _revised(first, 2, "RED", 150))  # more urgent than both: the hub's RED wins
    assert _check(sessions) == []
    with sessions.begin() as session:
        row = session.get(AlertRecord, first["alert_id"])
        assert row is not None and row.rag == "RED" and row.rag_set_by is None
        row.rag, row.rag_rank, row.rag_set_by, row.rag_set_at, row.due_at, row.at_risk_at = person
        row.hub_rag = "RED"
    assert _check(sessions) != []


def test_a_history_line_inserted_with_a_low_id_does_not_make_an_alert_legacy(
        sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed: sealed_views.check takes any alert_actions row with id <= sealing_began.through as
    legacy, and an alert with such a row escapes the claim and decision checks: the role INSERTs a line with id 0
    (or -1) and may then set decided_at (the alert leaves the queue) or claimed_by (it leaves other workers'
    queues); verify exits 0"""
    first = _new_alert("RED")
    _hub(sessions, first)
    _sql(sessions, "INSERT INTO alert_actions (id, alert_id, action, actor, detail, at) "
                   "VALUES (0, :a, 'claimed', 'pat', '', '2026-11-25 10:00:00')", a=first["alert_id"])
    _sql(sessions, "UPDATE alerts SET decided_at = '2026-11-25 10:05:00', claimed_by = 'pat' WHERE alert_id = :a",
         a=first["alert_id"])
    assert _check(sessions) != []


SUMMER = datetime(2026, 6, 24, 5, 0, tzinfo=UTC)  # a Wednesday, 06:00 in London (BST): before the working day


def test_a_working_hours_rerating_in_summer_on_sqlite_is_not_a_false_alarm(sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed (false alarm, and a wrong deadline shown): actions._rerate stores clocks.deadline()'s
    Europe/London-aware time; SQLite keeps its wall time without the offset, read back as UTC, so in summer a
    legitimate working-hours re-rating is an hour off its seal (verify names it) and the page shows its deadline an
    hour late"""
    first = _new_alert("RED", opened=SUMMER)
    _hub(sessions, first)
    actions.claim(sessions, ALICE, first["alert_id"], SUMMER + timedelta(minutes=1))
    actions.rerate(sessions, ALICE, first["alert_id"], "AMBER", "seen the school", SUMMER + timedelta(minutes=2),
                   RAPID)  # AMBER: 6 working hours from 09:00 London
    assert _check(sessions) == []


# ---------------------------------------------------------------- robustness: a bad row is reported, not a crash

def _shown(values: str, views: dict[str, Any]) -> sealed_values.ShownEvent:
    return sealed_values.ShownEvent("e1", "police.public_protection_notification", "POLICE", NOW, values, views, True)


def _released() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    names = {"payload.risk_grading"}
    packed = sealed_values.sealed_values(KEYS.macs, "e1", {"payload": {"risk_grading": "HIGH"}}, names, NOW)
    body = {"event_type": "police.public_protection_notification", "source_agency": "POLICE", "values_mac": packed}
    return body, [{"recipient_role": "mash_social_worker", "fields_shared": sorted(names)}]


def test_the_released_values_as_stored_pass() -> None:
    body, decisions = _released()
    shown = _shown('{"payload": {"risk_grading": "HIGH"}}', {"mash_social_worker": ["payload.risk_grading"]})
    assert sealed_values.differences(shown, body, decisions, KEYS.mac) == []


@pytest.mark.parametrize("values", ["{not json", "null", "[1, 2]", '"text"'])
def test_unreadable_values_are_reported_not_raised(values: str) -> None:
    """Was a defect, fixed: sealed_values.differences orjson.loads the row's values unguarded: a row the role made
    unreadable crashes `mash audit verify` (every other finding unprinted) instead of being named"""
    body, decisions = _released()
    found = sealed_values.differences(_shown(values, {"mash_social_worker": ["payload.risk_grading"]}), body,
                                      decisions, KEYS.mac)
    assert found


def test_a_null_view_is_reported_not_raised() -> None:
    """Was a defect, fixed: sealed_values.differences takes each role's view as a list: a view of null (or a view
    map that is not a map) crashes verify instead of being named"""
    body, decisions = _released()
    found = sealed_values.differences(_shown('{"payload": {"risk_grading": "HIGH"}}', {"mash_social_worker": None}),
                                      body, decisions, KEYS.mac)
    assert found


def test_an_alert_with_unreadable_json_is_reported_not_raised(sessions: sessionmaker[Session]) -> None:
    """Was a defect, fixed: sealed_views.check loads every alerts row through the ORM: a JSON column the role made
    unreadable (SQLite keeps any text) raises out of verify"""
    first = _new_alert("RED")
    _hub(sessions, first)
    _sql(sessions, "UPDATE alerts SET reasons = '{not json'")
    assert any("the alerts table holds a row that cannot be read" in m for m in _check(sessions))
