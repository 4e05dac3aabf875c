"""A database poll names each row's record by its table too: two tables with the same key value are
two records with two event ids; a stream polled before scopes keeps the ids it has been giving (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, create_engine, insert

from connectors.registry import build_connector
from connectors.sdk.contract import record_id_of
from connectors.sdk.runner import prepare
from connectors.sdk.sources.base import SourceRecord
from connectors.sdk.sources.database import SCOPE, DatabasePollSource, PollStream, record_scope
from mash.codec import Codec

ROW = {"concern_id": "1", "pupil_id": "P1", "upn": None, "nhs_number": None, "forename": "Ada", "surname": "Lee",
       "dob": "2015-01-02", "sex": "F", "address": None, "postcode": "LS1 1AA", "school_urn": "107942",
       "concern_kind": "OTHER", "attendance_percent": None, "previous_attendance_percent": None,
       "safeguarding_category": None, "detail": None, "logged_at": "2020-01-01T09:00:00Z",
       "updated_at": "2020-01-01 09:00:00"}
TABLES = ("concerns_a", "concerns_b")


def test_a_scoped_record_id_differs_from_the_unscoped_one_and_from_every_other_split_of_the_same_text() -> None:
    assert record_id_of("sis", "1", "") == record_id_of("sis", "1")  # unscoped: the ids given before scopes
    ids = {record_id_of("sis", "1", "a"), record_id_of("sis", "1", "b"), record_id_of("sis", "1"),
           record_id_of("sis", "a/1"), record_id_of("sis", "b/1", "a"), record_id_of("sis", "1", "a/b")}
    assert len(ids) == 6


def test_a_stream_not_polled_yet_is_scoped_by_its_table_or_its_record_scope() -> None:
    assert record_scope(PollStream(table="t", cursor="c", key="k"), None) == "t"
    assert record_scope(PollStream(table="t", cursor="c", key="k", record_scope="school-1/t"), None) == "school-1/t"


def test_a_checkpoint_pins_its_scope_and_one_from_before_scopes_keeps_the_unscoped_ids() -> None:
    stream = PollStream(table="t", cursor="c", key="k", record_scope="new")
    assert record_scope(stream, {"cursor": 5, "key": 9}) == ""  # saved before scopes existed
    assert record_scope(stream, {"cursor": 5, "key": 9, SCOPE: "t"}) == "t"  # pinned: the config moved on


def _school(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'school.db'}"
    engine = create_engine(url)
    metadata = MetaData()
    for name in TABLES:
        table = Table(name, metadata, *(Column(c, String) for c in ROW if c != "concern_id"),
                      Column("concern_id", String, primary_key=True))
        metadata.create_all(engine, tables=[table])
        with engine.begin() as db:
            db.execute(insert(table), [{**ROW}])
    engine.dispose()
    return url


def _records(tmp_path: Path, checkpoints: dict[str, dict[str, Any]]) -> tuple[Any, list[SourceRecord]]:
    connector = build_connector("education", tmp_path / "state", overrides={
        "url": _school(tmp_path), "safety_lag_s": 0,
        "streams": [{"table": t, "cursor": "updated_at", "key": "concern_id"} for t in TABLES]})
    source = DatabasePollSource(connector.config)  # type: ignore[arg-type]
    return connector, [i for i in source.items(checkpoints) if isinstance(i, SourceRecord)]


def _envelopes(connector: Any, records: list[SourceRecord]) -> list[dict[str, Any]]:
    codec = Codec()
    outcomes = [prepare(connector, r, codec) for r in records]
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return [codec.decode(o.value)[0]["envelope"] for o in outcomes]


def test_two_tables_with_the_same_key_value_give_two_records_and_two_event_ids(tmp_path: Path) -> None:
    connector, records = _records(tmp_path, {})
    envelopes = _envelopes(connector, records)
    assert [e["source_record_id"] for e in envelopes] == ["1", "1"]  # the agency's own id, as it gave it
    assert len({e["record_id"] for e in envelopes}) == 2 and len({e["event_id"] for e in envelopes}) == 2
    assert [e["record_id"] for e in envelopes] == [
        record_id_of(connector.source_system, "1", t) for t in TABLES]
    assert [r.position[SCOPE] for r in records] == list(TABLES)  # pinned in the checkpoint saved after them


def test_streams_whose_checkpoints_predate_scopes_keep_the_ids_they_were_giving(tmp_path: Path) -> None:
    before_scopes = {t: {"cursor": "2019-01-01 00:00:00", "key": "0"} for t in TABLES}
    connector, records = _records(tmp_path, before_scopes)
    envelopes = _envelopes(connector, records)
    assert {e["record_id"] for e in envelopes} == {record_id_of(connector.source_system, "1")}
    assert [r.position[SCOPE] for r in records] == ["", ""]  # and go on giving them after the next checkpoint
