"""The reference connectors map their shipped samples, and dead-letter what is broken, with reasons."""

import json
from pathlib import Path

import pytest

from connectors.registry import CONNECTORS, build_connector
from connectors.sdk.contract import Connector
from connectors.sdk.formats import ParseError, read_records
from connectors.sdk.runner import Outcome, prepare_all
from mash.codec import Codec


def get_connector(name: str) -> Connector:
    return build_connector(name, Path("/tmp/mash-unit"))


def sample_outcomes(connector: Connector, path: Path | None = None) -> list[Outcome]:
    return list(prepare_all(connector, connector.sample_records(path or connector.sample), Codec()))

EXPECTED = {  # (events, dead letters) in each shipped sample
    "police": (6, 2),
    "health": (7, 2),
    "education": (6, 1),
    "social_care": (5, 2),
}


@pytest.mark.parametrize("name", sorted(CONNECTORS))
def test_shipped_sample_maps_to_valid_keyed_events_and_known_dead_letters(name: str) -> None:
    connector = get_connector(name)
    codec = Codec()
    outcomes = sample_outcomes(connector)
    events = [o for o in outcomes if o.error is None]
    dead = [o for o in outcomes if o.error is not None]
    assert (len(events), len(dead)) == EXPECTED[name]
    for outcome in events:
        record, writer = codec.decode(outcome.value)
        assert writer.name == connector.schema
        assert outcome.key == record["envelope"]["subject"]["local_id"].encode()
        assert record["envelope"]["source_agency"] == connector.agency
    for outcome in dead:
        letter, _ = codec.decode(outcome.value, "uk.mash.hub.DeadLetter")
        assert letter["original"] == outcome.record.raw
        assert letter["stage"] == f"connector:{name}"
        assert letter["source_position"] == outcome.record.label
        assert dict(outcome.headers)["mash.dlq.error_class"] == type(outcome.error).__name__.encode()


def test_health_events_are_marked_special_category() -> None:
    connector = get_connector("health")
    event = next(o for o in sample_outcomes(connector) if o.error is None)
    record, _ = Codec().decode(event.value)
    assert record["envelope"]["sensitivity"] == "SPECIAL_CATEGORY"


def test_a_resubmitted_record_keeps_its_event_id() -> None:
    connector = get_connector("social_care")
    ids = [Codec().decode(o.value)[0]["envelope"]["event_id"] for o in sample_outcomes(connector) if o.error is None]
    assert ids[0] == ids[4] and len(set(ids)) == len(ids) - 1


def test_mapping_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    path.write_text("\n".join(json.dumps({**good, **change}) for change in (
        {"risk_grading": "EXTREME"}, {"children_present": "perhaps"}, {"ppn_id": ""},
        {"summary": "x" * 20_000}, {"forename": {"nested": "object"}},
    )))
    errors = [str(o.error) for o in sample_outcomes(get_connector("police"), path)]
    assert [e.split("'")[1] for e in errors] == ["risk_grading", "children_present", "ppn_id", "summary",
                                                 "forename"]


def test_hostile_text_is_carried_as_data_unchanged() -> None:
    connector = get_connector("police")
    texts = [Codec().decode(o.value)[0]["payload"]["summary"] for o in sample_outcomes(connector) if o.error is None]
    assert any("<script>" in (t or "") for t in texts)


def test_csv_rows_with_the_wrong_number_of_columns_are_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n1,2\n1,2,3\n\xff\xfe,1\n")
    records = list(read_records(path))
    assert [r.label for r in records] == ["x.csv:2", "x.csv:3", "x.csv:4"]
    assert records[0].fields == {"a": "1", "b": "2"}
    assert all(isinstance(r.error, ParseError) for r in records[1:])


def test_json_lines_that_are_not_objects_are_parse_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n\n{broken\n')
    records = list(read_records(path))
    assert [r.label for r in records] == ["x.jsonl:1", "x.jsonl:2", "x.jsonl:4"]
    assert [r.error is None for r in records] == [True, False, False]


def test_unsupported_source_format_says_which_to_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported source format"):
        list(read_records(tmp_path / "x.xml"))


def test_unknown_fields_are_dead_lettered_by_name(tmp_path: Path) -> None:
    path = tmp_path / "extra.jsonl"
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    path.write_text(json.dumps({**good, "officer_private_notes": "x", "bank_details": "y"}) + "\n")
    outcome, = sample_outcomes(get_connector("police"), path)
    assert "unknown field(s) 'bank_details', 'officer_private_notes'" in str(outcome.error)


def test_records_after_a_checkpoint_are_the_only_ones_read(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("".join(f'{{"n": {i}}}\n' for i in range(1, 6)))
    assert [r.position["n"] for r in read_records(path, after=3)] == [4, 5]


def test_identifier_checks_are_recorded_on_the_event_and_bad_ones_kept() -> None:
    subjects = {Codec().decode(o.value)[0]["envelope"]["subject"]["local_id"]:
                Codec().decode(o.value)[0]["envelope"]["subject"]
                for o in sample_outcomes(get_connector("health")) if o.error is None}
    mistyped = subjects["RR8000011"]  # the sample's mistyped NHS number
    assert mistyped["nhs_number_status"] == "INVALID" and mistyped["nhs_number"]
    assert subjects["RR8000001"]["nhs_number_status"] == "VALID"
    assert subjects["RR8000001"]["upn_status"] == "ABSENT"


def test_a_huge_field_is_dead_lettered_with_its_original_cut_to_fit(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    path.write_text(json.dumps({**good, "summary": "A" * 950_000}) + "\n")
    outcome, = sample_outcomes(get_connector("police"), path)
    assert "summary" in str(outcome.error)
    letter, _ = Codec().decode(outcome.value)
    assert letter["original_truncated"] and letter["original_size"] > 950_000
    assert len(outcome.value) < 1_000_000
    assert dict(outcome.headers)["mash.dlq.original_truncated"] == str(letter["original_size"]).encode()


def test_a_ten_megabyte_line_is_refused_unread_and_the_next_line_is_read(tmp_path: Path) -> None:
    """A line past the record cap is read past in pieces, never held whole (a newline-less multi-GB
    file must not exhaust memory): its dead letter carries its first bytes only."""
    path = tmp_path / "huge.jsonl"
    lines = get_connector("police").sample.read_text().splitlines()
    good = json.loads(lines[0])
    path.write_text(json.dumps({**good, "summary": "A" * 10_000_000}) + "\n" + lines[1] + "\n")
    refused, after = sample_outcomes(get_connector("police"), path)
    assert "longer than 1,048,576 bytes; refused unread" in str(refused.error)
    letter, _ = Codec().decode(refused.value)
    assert len(letter["original"]) <= 4096
    assert after.record.label == "huge.jsonl:2"


def test_wrongly_encoded_lines_are_dead_lettered_not_guessed(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    path.write_bytes(json.dumps({**good, "surname": "Zoë"}, ensure_ascii=False).encode("latin-1") + b"\n")
    outcome, = sample_outcomes(get_connector("police"), path)
    assert isinstance(outcome.error, ParseError) and "JSON" in str(outcome.error)


def test_sql_and_html_in_text_fields_travel_as_inert_data(tmp_path: Path) -> None:
    path = tmp_path / "hostile.jsonl"
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    hostile = "Robert'); DROP TABLE persons;-- <img src=x onerror=alert(1)>"
    path.write_text(json.dumps({**good, "surname": hostile, "summary": hostile}) + "\n")
    outcome, = sample_outcomes(get_connector("police"), path)
    record, _ = Codec().decode(outcome.value)
    assert record["envelope"]["subject"]["family_name"] == hostile == record["payload"]["summary"]


def test_an_unknown_csv_column_is_dead_lettered_by_name(tmp_path: Path) -> None:
    good = json.loads(get_connector("police").sample.read_text().splitlines()[0])
    row = {**{k: ("" if v is None else str(v)) for k, v in good.items()}, "ethnicity_code": "W1"}
    path = tmp_path / "export.csv"
    path.write_text(",".join(row) + "\n" + ",".join(f'"{v}"' for v in row.values()) + "\n")
    connector = build_connector("police", tmp_path, overrides={"format": "csv"})
    outcome, = sample_outcomes(connector, path)
    assert "unknown field(s) 'ethnicity_code'" in str(outcome.error)
