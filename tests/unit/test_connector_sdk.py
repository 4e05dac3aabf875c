"""The SDK's configuration, file drop source and FHIR flattening, without a broker."""

import json
import os
from pathlib import Path

import pytest

from connectors.registry import build_connector
from connectors.sdk.config import ConfigError, load_config
from connectors.sdk.fhir import encounter_records
from connectors.sdk.sources.base import SourceRecord, StreamEnd
from connectors.sdk.sources.file_drop import FileDropConfig, FileDropSource


def test_every_bad_setting_is_reported_at_once_by_name(tmp_path: Path) -> None:
    config = tmp_path / "police.yaml"
    config.write_text("inbox: /tmp/in\nbatch_size: 0\nformat: xml\nbatchsize: 10\n")
    with pytest.raises(ConfigError) as error:
        load_config(FileDropConfig, config)
    message = str(error.value)
    assert "3 bad setting(s)" in message
    for key in ("batch_size", "format", "batchsize"):
        assert f"  {key}:" in message


def test_a_missing_required_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="inbox: Field required"):
        load_config(FileDropConfig, None, {"format": "csv"})


def test_an_unreadable_config_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(FileDropConfig, tmp_path / "missing.yaml")


def test_connectors_default_to_an_inbox_under_the_state_dir(tmp_path: Path) -> None:
    connector = build_connector("police", tmp_path)
    assert connector.config.inbox == tmp_path / "connectors" / "police" / "inbox"  # type: ignore[attr-defined]


def drop(inbox: Path, name: str, lines: list[str]) -> Path:
    inbox.mkdir(parents=True, exist_ok=True)
    path = inbox / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_file_drop_reads_files_in_order_and_ends_each_stream(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "b.jsonl", ['{"x": 3}'])
    drop(inbox, "a.jsonl", ['{"x": 1}', '{"x": 2}'])
    source = FileDropSource(FileDropConfig(inbox=inbox, format="jsonl"))
    items = list(source.items({}))
    assert [(type(i).__name__, i.stream) for i in items] == [
        ("SourceRecord", "a.jsonl"), ("SourceRecord", "a.jsonl"), ("StreamEnd", "a.jsonl"),
        ("SourceRecord", "b.jsonl"), ("StreamEnd", "b.jsonl")]
    for end in (i for i in items if isinstance(i, StreamEnd)):
        source.acknowledge(end)
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["a.jsonl", "b.jsonl"]
    assert list(inbox.iterdir()) == []


def test_file_drop_resumes_inside_a_file_after_its_checkpoint(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "a.jsonl", ['{"x": 1}', '{"x": 2}', '{"x": 3}'])
    source = FileDropSource(FileDropConfig(inbox=inbox, format="jsonl"))
    first = [i for i in source.items({}) if isinstance(i, SourceRecord)]
    checkpoint = {"a.jsonl": first[1].position}
    resumed = [i for i in source.items(checkpoint) if isinstance(i, SourceRecord)]
    assert [r.fields for r in resumed] == [{"x": 3}]


def test_a_new_file_with_a_finished_files_name_is_read_again(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    path = drop(inbox, "daily.jsonl", ['{"x": 1}'])
    source = FileDropSource(FileDropConfig(inbox=inbox, format="jsonl"))
    end = next(i for i in source.items({}) if isinstance(i, StreamEnd))
    path.write_text('{"x": 2}\n{"x": 3}\n')
    os.utime(path, ns=(1, 1))  # a different file: different size and time
    again = [i for i in source.items({"daily.jsonl": end.position}) if isinstance(i, SourceRecord)]
    assert [r.fields for r in again] == [{"x": 2}, {"x": 3}]


def test_an_unparseable_bundle_moves_to_failed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    drop(inbox, "bundle.json", ["{ not json"])
    source = FileDropSource(FileDropConfig(inbox=inbox, format="fhir"))
    items = list(source.items({}))
    assert isinstance(items[0], SourceRecord) and items[0].error is not None
    assert isinstance(items[-1], StreamEnd) and items[-1].position["failed"]
    source.acknowledge(items[-1])
    assert (tmp_path / "failed" / "bundle.json").exists()


def test_a_missing_inbox_is_a_clear_error(tmp_path: Path) -> None:
    source = FileDropSource(FileDropConfig(inbox=tmp_path / "nope", format="jsonl"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(source.items({}))


def test_fhir_encounters_are_joined_with_patient_and_child_protection_flag() -> None:
    bundle = {"resourceType": "Bundle", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {
            "resourceType": "Patient", "id": "MRN1",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
            "name": [{"family": "Hughes", "given": ["Amelia", "Rose"]}], "gender": "female",
            "birthDate": "2016-04-12", "address": [{"line": ["1 Road"], "postalCode": "LS6 2QT"}]}},
        {"resource": {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "EMER"},
                      "subject": {"reference": "urn:uuid:p"},
                      "period": {"start": "2026-11-05T02:15:00Z"}, "reasonCode": [{"text": "Burn"}],
                      "serviceProvider": {"identifier": {"value": "RR801"}}}},
        {"resource": {"resourceType": "Flag", "status": "active", "subject": {"reference": "urn:uuid:p"},
                      "code": {"coding": [{"system": "https://fhir.nhs.uk/CodeSystem/cp-is", "code": "CPP"}]}}},
    ]}
    (raw, fields, error), = encounter_records(bundle)
    assert error is None and fields is not None
    assert fields["nhs_number"] == "9434765919" and fields["given_name"] == "Amelia Rose"
    assert fields["child_protection_flag"] is True and fields["presenting_complaint"] == "Burn"
    assert json.loads(raw)["encounter"]["resource"]["id"] == "e1"


def test_a_document_that_is_not_a_bundle_is_one_error() -> None:
    (_, fields, error), = encounter_records({"resourceType": "Patient"})
    assert fields is None and error is not None and "Bundle" in error


def poll_db(tmp_path: Path, rows: int) -> tuple[str, list[dict[str, object]]]:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, insert

    url = f"sqlite:///{tmp_path / 'src.db'}"
    engine = create_engine(url)
    table = Table("concerns", MetaData(), Column("id", Integer, primary_key=True), Column("note", String),
                  Column("updated_at", DateTime))
    table.metadata.create_all(engine)
    start = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
    values = [{"id": i, "note": f"n{i}", "updated_at": start + timedelta(minutes=i // 2)} for i in range(1, rows + 1)]
    with engine.begin() as db:
        db.execute(insert(table), values)
    engine.dispose()
    return url, values


def test_database_poll_reads_in_cursor_order_and_resumes_after_a_checkpoint(tmp_path: Path) -> None:
    from connectors.sdk.sources.database import DatabasePollConfig, DatabasePollSource

    url, _ = poll_db(tmp_path, 25)
    config = DatabasePollConfig.model_validate(
        {"url": url, "page_size": 4, "streams": [{"table": "concerns", "cursor": "updated_at", "key": "id"}]})
    first = [i for i in DatabasePollSource(config).items({}) if isinstance(i, SourceRecord)]
    assert [r.fields["id"] for r in first if r.fields] == list(range(1, 26))
    assert first[0].fields is not None and first[0].fields["updated_at"].endswith("+00:00")
    checkpoint = {"concerns": first[10].position}  # rows 1-11 confirmed; 11 and 12 share a cursor value
    again = [i for i in DatabasePollSource(config).items(checkpoint) if isinstance(i, SourceRecord)]
    assert [r.fields["id"] for r in again if r.fields] == list(range(12, 26))


def test_database_poll_binds_values_so_hostile_text_stays_data(tmp_path: Path) -> None:
    from connectors.sdk.sources.database import DatabasePollConfig, DatabasePollSource

    url, _ = poll_db(tmp_path, 3)
    config = DatabasePollConfig.model_validate(
        {"url": url, "streams": [{"table": "concerns", "cursor": "note", "key": "id"}]})
    hostile = {"concerns": {"cursor": "n1' OR '1'='1", "key": 0}}
    rows = [i for i in DatabasePollSource(config).items(hostile) if isinstance(i, SourceRecord)]
    assert [r.fields["note"] for r in rows if r.fields] == ["n2", "n3"]


def test_connectors_starting_together_share_one_new_checkpoint_store(tmp_path: Path) -> None:
    import threading

    from connectors.sdk.offsets import OffsetStore

    url = f"sqlite:///{tmp_path / 'offsets.db'}"
    errors: list[Exception] = []
    start = threading.Barrier(8)

    def open_and_save(n: int) -> None:
        start.wait()
        try:
            store = OffsetStore(url, f"connector-{n}")
            store.save({"stream": {"n": n}})
            store.close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_and_save, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert OffsetStore(url, "connector-3").load() == {"stream": {"n": 3}}


def test_a_configuration_file_overrides_the_connectors_defaults(tmp_path: Path) -> None:
    config = tmp_path / "police.yaml"
    config.write_text(f"inbox: {tmp_path / 'elsewhere'}\nformat: jsonl\nfollow: true\n")
    connector = build_connector("police", tmp_path, config)
    assert connector.config.inbox == tmp_path / "elsewhere"  # type: ignore[attr-defined]
    assert connector.config.follow is True  # type: ignore[attr-defined]
    overridden = build_connector("police", tmp_path, config, {"follow": False})
    assert overridden.config.follow is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("column", ["datetime", "text-T", "text-space"])
def test_database_poll_leaves_rows_stamped_within_the_safety_lag_for_a_later_poll(tmp_path: Path, column: str) -> None:
    """A row stamped just now may belong to a transaction that commits late with an older stamp
    than rows read after it: the cursor would pass it. Fresh rows wait; old ones are read."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, create_engine, insert

    from connectors.sdk.sources.database import DatabasePollConfig, DatabasePollSource

    url = f"sqlite:///{tmp_path / 'lag.db'}"
    engine = create_engine(url)
    kind = DateTime if column == "datetime" else Text
    table = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("updated_at", kind))
    table.metadata.create_all(engine)
    now = datetime.now(ZoneInfo("Europe/London")).replace(tzinfo=None)

    def stamp(moment: datetime) -> object:
        return moment if column == "datetime" else moment.isoformat(sep="T" if column == "text-T" else " ")

    with engine.begin() as db:
        db.execute(insert(table), [{"id": 1, "updated_at": stamp(now - timedelta(hours=2))},
                                   {"id": 2, "updated_at": stamp(now - timedelta(seconds=5))}])
    engine.dispose()

    def ids(lag: float) -> list[int]:
        config = DatabasePollConfig.model_validate({"url": url, "safety_lag_s": lag, "streams": [
            {"table": "rows", "cursor": "updated_at", "key": "id"}]})
        return [i.fields["id"] for i in DatabasePollSource(config).items({})
                if isinstance(i, SourceRecord) and i.fields]

    assert ids(60) == [1]
    assert ids(0) == [1, 2]
