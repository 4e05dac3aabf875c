"""The timeline's rows against the trail (`mash audit verify`), attacked by the processes' role after a
real sharing and triage pass (`test_sealed_views._worked`). A docstring saying "was a defect": it
failed before its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from sqlalchemy import CursorResult, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from mash.models import TimelineEventRecord
from mash.settings import Settings
from tests.integration.test_sealed_views import _verify, _worked
from tests.support.triage_data import NOW


def _changed(session: Session, statement: str, params: dict[str, Any]) -> int:
    return int(cast(CursorResult[Any], session.execute(text(statement), params)).rowcount)


def _rows(sessions: sessionmaker[Session]) -> list[TimelineEventRecord]:
    with sessions() as session:
        return list(session.scalars(select(TimelineEventRecord).order_by(TimelineEventRecord.event_id)))


def test_an_untouched_timeline_passes_and_a_swapped_event_type_is_named(
        provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    sessions, _ = _worked(engine, tmp_path)
    assert _verify(provisioned)[0] == 0
    row = _rows(sessions)[0]
    with sessions.begin() as session:
        session.execute(text("UPDATE timeline_events SET event_type = 'education.concern' WHERE event_id = :e"),
                        {"e": row.event_id})
    code, _, err = _verify(provisioned)
    assert code == 1 and "event_type is 'education.concern'" in err, err


def test_a_timeline_row_deleted_is_named(provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """Was a defect, fixed: sealed_views._check_timeline walks only the rows present: a released event's row DELETEd
    by the role leaves the child's timeline (and the alert's standing events) unnamed, though its sharing entry and
    the alert's sealed event_ids name it"""
    sessions, _ = _worked(engine, tmp_path)
    row = _rows(sessions)[0]
    with sessions.begin() as session:
        assert _changed(session, "DELETE FROM timeline_events WHERE event_id = :e", {"e": row.event_id}) == 1
    assert _verify(provisioned)[0] == 1


def test_a_forged_merge_moving_one_childs_timeline_to_another_is_named(
        provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """Was a defect, fixed: sealed_views._check_timeline takes whose timeline a row belongs on from person_merges,
    which the processes' role may INSERT: a forged merge plus the rows moved puts one child's police records on
    another child's alert page, unnamed"""
    sessions, _ = _worked(engine, tmp_path)
    rows = _rows(sessions)
    victim = rows[0].person_id
    other = next(r.person_id for r in rows if r.person_id != victim)
    with sessions.begin() as session:
        session.execute(text("INSERT INTO person_merges (retired_person_id, surviving_person_id, event_id, reason, "
                             "merged_at) VALUES (:r, :s, :e, 'same NHS number', :at)"),
                        {"r": victim, "s": other, "e": rows[0].event_id, "at": NOW})
        moved = _changed(session, "UPDATE timeline_events SET person_id = :s WHERE person_id = :r",
                         {"r": victim, "s": other})
    assert moved >= 1
    assert _verify(provisioned)[0] == 1


@pytest.mark.parametrize("column", ["withdrawn_fields", "record_id"])
def test_the_timeline_columns_the_page_shows_beside_values_are_checked(
        column: str, provisioned: Settings, engine: Engine, tmp_path: Path) -> None:
    """Was a defect, fixed: withdrawn_fields (shown as 'withdrawn on <date>' in a field's place, and making a row
    visible to a role with no view of it: views.visible_event) and record_id (which rows the alert page diffs as
    revisions of one record, 'police amended: ...') are in no seal: the role rewrites them on a standing row unnamed"""
    sessions, _ = _worked(engine, tmp_path)
    rows = _rows(sessions)
    row = rows[0]
    value = {"withdrawn_fields": orjson.dumps({"mash_health_practitioner": {"payload.risk_grading": "2020-01-01"},
                                               **{r: {f: "2020-01-01" for f in fs[:1]}
                                                  for r, fs in row.views.items()}}).decode(),
             "record_id": rows[1].record_id}[column]
    assert rows[1].record_id != row.record_id
    with sessions.begin() as session:
        assert _changed(session, f"UPDATE timeline_events SET {column} = :v WHERE event_id = :e",
                        {"v": value, "e": row.event_id}) == 1
    assert _verify(provisioned)[0] == 1
