"""Every field the triage pages show is covered by the audit trail (issue 16).

The processes' database role must write the rows the pages read: the hub each alert revision and
the timeline, the app each claim, re-rating and decision. So each row is bound to a signed entry,
and `mash audit verify` names any row the role changed, added or removed afterwards. Each attack
runs as that role (on PostgreSQL, the runtime role; on SQLite, the file's writer) after a real
sharing and triage pass and real actions in the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from sqlalchemy import CursorResult, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.db import session_factory
from mash.models import AlertActionRecord, AlertRecord, TimelineEventRecord
from mash.settings import Settings, get_settings
from mash.topics import AUDIT, SHARED
from services.messages import InMessage
from services.sharing.audit_keys import audit_keys
from services.sharing.policy_source import PolicySource
from services.sharing.stage import Sharer
from services.triage.correlation import Rules
from services.triage.profiles import PROFILES_DIR, load_profile
from services.triage.scoring_file import load_scoring
from services.triage.stage import Triage
from services.triage_app import actions
from services.triage_app.accounts import User
from tests.integration.conftest import mash, ready_engine
from tests.integration.test_identity import police
from tests.integration.test_sharing import DEFAULT_POLICY, enriched
from tests.support.triage_data import NOW, add_users
from tests.unit.test_correlation import MECHANICS_SCORING  # the rows' mechanics, not the calibration

CODEC = Codec()
ALICE = User("alice", "Alice", "triage_worker", "mash_social_worker")
MO = User("mo", "Mo", "triage_manager", "triage_manager")


@pytest.fixture
def engine(provisioned: Settings) -> Iterator[Engine]:
    engine = ready_engine(provisioned)
    yield engine
    engine.dispose()


def _feed() -> list[dict[str, object]]:
    """Police records of three children, two events each: a child at risk (an alert), then graded high
    or not (a revision of it, or none)."""
    return [{**police(i, f"P-{i % 3}", None, f"2014-0{1 + i % 3}-1{i % 3}", "LS1 1AA", 1 + i),
             "incident_type": "CHILD_AT_RISK", "risk_grading": "HIGH" if i == 4 else "MEDIUM"} for i in range(6)]


def _worked(engine: Engine, tmp_path: Path) -> tuple[sessionmaker[Session], list[str]]:
    """Shared, triaged with the hub's key, then one alert claimed, reassigned, re-rated and decided
    and another claimed and released in the app: every kind of row the pages read."""
    sessions = session_factory(engine)
    keys = audit_keys(get_settings())
    out = Sharer(CODEC, sessions, PolicySource(DEFAULT_POLICY), keys=keys).process(
        enriched(sessions, _feed(), tmp_path))
    shared = [InMessage("mash.shared.v1", n % 2, n, m.key, m.value) for n, m in enumerate(out) if m.topic == SHARED]
    rules = Rules(load_scoring(MECHANICS_SCORING), load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml"))
    sent = Triage(CODEC, rules, sessions, keys=keys).process_batch(shared)
    assert any(m.topic == AUDIT for m in sent)  # the seals go to the topic, where they anchor the chain
    with sessions() as session:
        alert_ids = list(session.scalars(select(AlertRecord.alert_id).order_by(AlertRecord.alert_id)))
    assert len(alert_ids) >= 2, alert_ids
    add_users(sessions)
    first, second = alert_ids[:2]
    actions.claim(sessions, ALICE, first, NOW)
    actions.assign(sessions, MO, first, "mo", NOW + timedelta(minutes=1))
    with sessions() as session:
        rag = session.get(AlertRecord, first).rag  # type: ignore[union-attr]
    actions.rerate(sessions, MO, first, "GREEN" if rag != "GREEN" else "RED", "seen the school's note",
                   NOW + timedelta(minutes=2), load_profile(PROFILES_DIR / "rapid-2h-6h-24h.yaml"))
    actions.decide(sessions, MO, first, "EARLY_HELP", "family support", NOW + timedelta(minutes=3))
    actions.claim(sessions, ALICE, second, NOW + timedelta(minutes=4))
    actions.unclaim(sessions, ALICE, second, NOW + timedelta(minutes=5))
    return sessions, alert_ids


def _verify(provisioned: Settings) -> tuple[int, str, str]:
    result = mash(provisioned, "audit", "verify", "--database-only", check=False)
    return result.returncode, result.stdout, result.stderr


def test_what_the_pages_show_is_checked_against_the_trail_and_an_untouched_store_passes(
        provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    _, alert_ids = _worked(engine, tmp_path)
    code, out, err = _verify(provisioned)
    assert code == 0, err
    assert f"what the pages show: {len(alert_ids)} alerts, 6 history lines, 6 timeline events checked" in out
    assert "0 differ" in out and "before sealing began" not in out


# Each: what the processes' role does to a row, and what verify must say of it.
ATTACKS = {
    "rating changed": ("UPDATE alerts SET rag = CASE WHEN rag = 'GREEN' THEN 'RED' ELSE 'GREEN' END "
                       "WHERE alert_id = :second", "the hub's rating is not the one it sealed"),
    "score changed": ("UPDATE alerts SET score = score + 40 WHERE alert_id = :second",
                      "reasons, score, indicators, events or times are not the ones the hub sealed"),
    "reason removed": ("UPDATE alerts SET reasons = '[]' WHERE alert_id = :second",
                       "reasons, score, indicators, events or times are not the ones the hub sealed"),
    "deadline moved": ("UPDATE alerts SET due_at = opened_at WHERE alert_id = :second",
                       "its deadline or at-risk time is not the one the hub sealed"),
    "person's rating changed": ("UPDATE alerts SET rag = 'AMBER' WHERE alert_id = :first AND rag <> 'AMBER'",
                                "the sealed re-rating says"),
    "claimant swapped": ("UPDATE alerts SET claimed_by = 'pat' WHERE alert_id = :second",
                         "claimed by 'pat', its sealed history says None"),
    "decision hidden": ("UPDATE alerts SET decided_at = NULL WHERE alert_id = :first",
                        "a sealed decision was recorded on it, but it shows none"),
    "history line deleted": ("DELETE FROM alert_actions WHERE alert_id = :first AND action = 'assigned'",
                             "the sealed history line assigned by mo"),
    "history line added": ("INSERT INTO alert_actions (alert_id, action, actor, detail, at) "
                           "VALUES (:second, 'claimed', 'pat', '', '2026-11-25 10:09:00')",
                           "history line claimed by pat ('') has no sealed record"),
    "history line edited": ("UPDATE alert_actions SET actor = 'hana' WHERE alert_id = :second AND action = 'claimed'",
                            "history line claimed by hana ('') has no sealed record"),
    "alert forged": ("INSERT INTO alerts (alert_id, person_id, revision, status, rag, rag_rank, reasons, agencies, "
                     "event_ids, opened_at, updated_at, score, indicators, scoring_version, profile) VALUES "
                     "('00000000-0000-4000-8000-00000000f00d', 'p', 1, 'OPEN', 'RED', 0, '[]', '[]', '[]', "
                     "'2026-11-25 10:00:00', '2026-11-25 10:00:00', 90, '[]', '', '')",
                     "revision 1 has no sealed audit entry signed by the hub's key"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_row_the_pages_read_changed_by_the_processes_role_is_named(
        attack: str, provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    sessions, alert_ids = _worked(engine, tmp_path)
    statement, named = ATTACKS[attack]
    with sessions.begin() as session:
        result = session.execute(text(statement), {"first": alert_ids[0], "second": alert_ids[1]})
        changed = cast(CursorResult[Any], result).rowcount
    assert changed == 1, f"the attack touched {changed} rows"
    code, _, err = _verify(provisioned)
    assert code == 1
    assert "SHOWN NOT AS SEALED" in err and named in err, err


def _timeline_attack(sessions: sessionmaker[Session], how: str) -> None:
    with sessions.begin() as session:
        row = session.scalars(select(TimelineEventRecord).order_by(TimelineEventRecord.event_id)).first()
        assert row is not None
        values = orjson.loads(row.values)
        if how == "value changed":
            section = next(k for k, v in values.items() if isinstance(v, dict) and v)
            field = next(iter(values[section]))
            values[section][field] = "altered"
        elif how == "value added":
            values.setdefault("police", {})["withheld_note"] = "added later"
        elif how == "view widened":
            role = next(r for r, fields in row.views.items() if not fields or len(fields) < 5)
            views = {**row.views, role: [*row.views[role], "subject.nhs_number", "police.risk_grading"]}
            session.execute(text("UPDATE timeline_events SET views = :v WHERE event_id = :e"),
                            {"v": orjson.dumps(views).decode(), "e": row.event_id})
            return
        elif how in ("marked amended", "moved to another child", "marked withdrawn"):
            column, value = {"marked amended": ("superseded_by", "00000000-0000-4000-8000-00000000beef"),
                             "moved to another child": ("person_id", "00000000-0000-4000-8000-00000000cafe"),
                             "marked withdrawn": ("withdrawn", True)}[how]
            session.execute(text(f"UPDATE timeline_events SET {column} = :v WHERE event_id = :e"),
                            {"v": value, "e": row.event_id})
            return
        elif how == "moved in time":
            session.execute(text("UPDATE timeline_events SET occurred_at = '2020-01-01 00:00:00' WHERE event_id = :e"),
                            {"e": row.event_id})
            return
        session.execute(text("UPDATE timeline_events SET \"values\" = :v WHERE event_id = :e"),
                        {"v": orjson.dumps(values).decode(), "e": row.event_id})


@pytest.mark.parametrize(("how", "named"), [
    ("value changed", "is not the one released"),
    ("value added", "which was not released"),
    ("view widened", "which its decision did not share"),
    ("moved in time", "occurred_at differs from the date sealed"),
    ("marked amended", "but the sealed order of its record's revisions makes it None"),  # its values then hidden
    ("moved to another child", "is on the timeline of 00000000-0000-4000-8000-00000000cafe, but was released about"),
    ("marked withdrawn", "withdrawn is True, sealed as False"),
])
def test_a_timeline_row_changed_by_the_processes_role_is_named(
        how: str, named: str, provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    sessions, _ = _worked(engine, tmp_path)
    _timeline_attack(sessions, how)
    code, _, err = _verify(provisioned)
    assert code == 1 and "SHOWN NOT AS SEALED: timeline event" in err and named in err, err


def test_the_history_rows_are_what_the_app_sealed(provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """The check compares like with like: the rows the app wrote, one for one, with its sealed lines."""
    sessions, alert_ids = _worked(engine, tmp_path)
    with sessions() as session:
        lines = [(r.alert_id, r.action, r.actor) for r in
                 session.scalars(select(AlertActionRecord).order_by(AlertActionRecord.id))]
    first, second = alert_ids[:2]
    assert lines == [(first, "claimed", "alice"), (first, "assigned", "mo"), (first, "re-rated", "mo"),
                     (first, "decided", "mo"), (second, "claimed", "alice"), (second, "released", "alice")]
