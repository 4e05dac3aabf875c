"""Hostile input of every kind, through each connector and onto every topic the hub consumes, against
the real broker and a real `mash hub worker` (issue 16: a poison record never stops the hub or a feed).

Hypothesis draws the inputs (seeded, so a run is repeatable): malformed JSON, schema-invalid and
unknown fields, huge values, names over their limits, NUL and lone surrogates, deeply nested JSON,
hostile HTML/SQL text, numbers of thousands of digits, wrong types, symbolic links in a drop folder;
and onto the hub's topics random bytes, an unknown writer fingerprint, valid Avro of a schema that
does not belong there, truncated Avro, invalid UTF-8 inside a string, the right schema with hostile
values, and an inbound event written as another agency. They are drawn first and sent as one batch
(not one broker round trip per example). Then it asserts:

- each connector read every input as exactly one record: produced, or dead-lettered with its reason
  (or, for a push, refused at the door with a 4xx naming why);
- every message on every hub input topic ends in exactly one recorded outcome: a dead letter naming
  it, or (an event) its outcome in the triage store, or a later stage's dead letter of that event;
  never two;
- the stream goes on: a good event of each agency, sent after all the hostile input, gets its outcome;
- the worker never exits.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import Engine, select

from connectors.registry import build_connector
from connectors.sdk.contract import Connector
from connectors.sdk.offsets import OffsetStore
from connectors.sdk.runner import Runner, RunReport, make_producer
from connectors.sdk.sources.http_push import HttpPushSource
from mash.codec import MAGIC, Codec
from mash.consumer_lag import group_lag
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.models import EventOutcomeRecord
from mash.settings import Settings
from mash.topics import (
    AGENCIES,
    DEADLETTER,
    DECISIONS,
    ENRICHED,
    HUB_STAGE_INPUTS,
    INBOUND_SCHEMAS,
    MATCH_ANSWERS,
    SHARED,
    inbound,
    stage_group,
    topic_name,
)
from tests.integration.conftest import publish_record, wait_for
from tests.support.bus import operator_client

T = TypeVar("T")
SEED = int(os.environ.get("MASH_FUZZ_SEED", "16"))  # another seed: another repeatable run
PER_KIND = int(os.environ.get("MASH_FUZZ_PER_KIND", "10"))  # examples drawn of each kind, per connector/topic
PUSH_TOKEN = "fuzz-token-0d41"
PLACEHOLDER = "@@FUZZ@@"
LONE = "\ufffeLONE\ufffe"  # a marker in Avro strings: its UTF-8 bytes become lone surrogates' (same length)
LONE_BYTES = b"\xed\xa0\x80LONE\xed\xb0\x80"
ACCEPTED = {  # which schemas each hub input topic carries (anything else there is a dead letter)
    **{inbound(a): {INBOUND_SCHEMAS[a]} for a in AGENCIES},
    ENRICHED: {"uk.mash.hub.EnrichedEvent", "uk.mash.hub.PersonMerged"},
    SHARED: {"uk.mash.hub.SharedEvent", "uk.mash.hub.PersonMerged"},
    DECISIONS: {"uk.mash.hub.TriageDecision"},
    MATCH_ANSWERS: {"uk.mash.hub.MatchAnswer"},
}


def examples(strategy: st.SearchStrategy[T], count: int = PER_KIND) -> list[T]:
    """`count` examples of `strategy`, drawn with a fixed seed, with no test run per example."""
    drawn: list[T] = []

    @seed(SEED)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: T) -> None:
        drawn.append(value)

    collect()
    return drawn[:count]


# --- hostile values: each as JSON text (for JSON-speaking sources) and as a database value --------------


@dataclass(frozen=True)
class Value:
    json: str  # the raw JSON text put in the field's place (may be invalid JSON on purpose)
    db: Any  # what a database column holds instead


def _text(value: str) -> Value:
    return Value(json.dumps(value), value)


HTML_SQL = ["<script>alert(document.cookie)</script>", "'; DROP TABLE persons; --", "\" OR 1=1 --",
            "<img src=x onerror=alert(1)>", "{{7*7}}${jndi:ldap://x/a}", "../../../../etc/passwd",
            "Robert'); DELETE FROM audit_records;--", "\u202egnp.exe", "\r\nSet-Cookie: x=1"]
VALUES: dict[str, st.SearchStrategy[Value]] = {
    "huge values": st.integers(10_001, 300_000).map(lambda n: _text("Z" * n)),
    "over-limit names": st.integers(65, 400).map(lambda n: _text("N" * n)),
    "NUL and lone surrogates": st.one_of(
        st.text(max_size=8).map(lambda s: _text(f"{s}\x00{s}")),
        st.sampled_from(["\ud800", "a\udfffb", "\udbff"]).map(
            lambda s: Value(json.dumps(s), s.encode("utf-8", "surrogatepass")))),
    "deeply nested JSON": st.integers(1_000, 200_000).map(lambda d: Value("[" * d + "]" * d, "[" * d + "]" * d)),
    "hostile HTML/SQL text": st.sampled_from(HTML_SQL).map(_text),
    "thousands of digits": st.integers(1_000, 9_000).map(lambda n: Value("9" * n, "9" * n)),
    "wrong types": st.one_of(
        st.integers(-(2**70), 2**70).map(lambda i: Value(json.dumps(i), i if abs(i) < 2**63 else str(i))),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda f: Value(json.dumps(f), f)),
        st.booleans().map(lambda b: Value(json.dumps(b), int(b))),
        st.lists(st.integers(), max_size=3).map(lambda v: Value(json.dumps(v), json.dumps(v))),
        st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2).map(
            lambda v: Value(json.dumps(v), json.dumps(v)))),
}


@dataclass(frozen=True)
class Mutation:
    kind: str
    path: tuple[str | int, ...] = ()
    value: Value | None = None  # None with a path: the field is removed
    raw: bytes | None = None  # the whole record replaced by these bytes


FieldPath = tuple[str | int, ...]


def mutations(base: dict[str, Any], names: Sequence[FieldPath], required: Sequence[FieldPath], *,
              json_source: bool = True) -> dict[str, st.SearchStrategy[Mutation]]:
    """One strategy per kind of hostile record, mutating `base` (a good record) at one of its fields."""
    leaves = sorted(_leaves(base), key=str)
    anywhere = st.sampled_from(leaves)
    kinds: dict[str, st.SearchStrategy[Mutation]] = {}
    if json_source:
        text = json.dumps(base).encode()
        kinds["malformed JSON"] = st.one_of(
            st.integers(1, len(text) - 1).map(lambda n: Mutation("malformed JSON", raw=text[:n])),
            st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b and b.strip() != b"").map(
                lambda b: Mutation("malformed JSON", raw=b)),
            st.sampled_from([b"[]", b"null", b"42", b'"text"', b"{", b"\xff\xfe{}"]).map(
                lambda b: Mutation("malformed JSON", raw=b)))
    kinds["schema-invalid"] = st.tuples(st.sampled_from(required), st.sampled_from(
        [None, _text(""), _text("NOT_A_SYMBOL"), _text("2016-21-10"), Value("null", None)])).map(
        lambda pv: Mutation("schema-invalid", pv[0], pv[1]))
    kinds["unknown fields"] = st.text(st.characters(codec="ascii", categories=["L"]), min_size=1, max_size=12).filter(
        lambda k: k not in base).map(lambda k: Mutation("unknown fields", (f"zz_{k}",), _text("surprise")))
    for kind in ("huge values", "NUL and lone surrogates", "deeply nested JSON", "hostile HTML/SQL text",
                 "thousands of digits", "wrong types"):
        kinds[kind] = st.tuples(st.just(kind), anywhere, VALUES[kind]).map(lambda kpv: Mutation(*kpv))
    kinds["over-limit names"] = st.tuples(st.sampled_from(names), VALUES["over-limit names"]).map(
        lambda pv: Mutation("over-limit names", pv[0], pv[1]))
    return kinds


def _leaves(value: Any, path: tuple[str | int, ...] = ()) -> Iterable[tuple[str | int, ...]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(inner, (*path, key))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from _leaves(inner, (*path, n))
    else:
        yield path


def render(base: dict[str, Any], mutation: Mutation) -> bytes:
    """The record as JSON text with the mutation applied (the hostile value put in as raw text)."""
    if mutation.raw is not None:
        return mutation.raw
    record = json.loads(json.dumps(base))
    *parents, last = mutation.path
    holder = record
    for step in parents:
        holder = holder[step]
    if mutation.value is None:
        del holder[last]
        return json.dumps(record).encode()
    holder[last] = PLACEHOLDER
    return json.dumps(record).replace(json.dumps(PLACEHOLDER), mutation.value.json, 1).encode("utf-8", "surrogatepass")


# --- the connectors ------------------------------------------------------------------------------------


@dataclass
class ConnectorRun:
    name: str
    inputs: Counter[str]  # per kind
    report: RunReport
    refused_at_the_door: int = 0  # push requests answered 4xx without reaching the SDK (e.g. 413)


def _sample_fields(connector: Connector) -> dict[str, Any]:
    good = [r.fields for r in connector.sample_records(connector.sample) if r.fields is not None and r.error is None]
    return dict(good[0] or {})


def _run(connector: Connector, settings: Settings, state: Path, source: Any = None) -> RunReport:
    state.mkdir(parents=True, exist_ok=True)
    offsets = OffsetStore(f"sqlite:///{state / 'offsets.db'}", connector.name)
    producer = make_producer(settings.bootstrap_servers, kafka_python_options(settings, connector.principal))
    try:
        return Runner(connector, producer, offsets, settings).run(source or connector.open_source())
    finally:
        producer.close()
        offsets.close()


def _symlinks(inbox: Path, outside: Path, suffix: str) -> int:
    """Links a drop folder must refuse unread: to a file outside it, to a folder, to nothing."""
    outside.write_text("a secret outside the inbox\n")
    (inbox / f"link-file{suffix}").symlink_to(outside)
    (inbox / f"link-dir{suffix}").symlink_to(outside.parent)
    (inbox / f"link-dangling{suffix}").symlink_to(outside.parent / "nowhere")
    return 3


def run_police(settings: Settings, tmp_path: Path) -> ConnectorRun:
    state = tmp_path / "police"
    connector = build_connector("police", state, overrides={"inbox": state / "inbox", "settle_s": 0})
    base = _sample_fields(connector)
    names = [("forename",), ("surname",), ("person_ref",), ("postcode",), ("ppn_id",), ("nhs_number",)]
    required = [("ppn_id",), ("person_ref",), ("occurred_at",), ("incident_type",), ("risk_grading",), ("dob",)]
    inputs: Counter[str] = Counter()
    lines = []
    for kind, strategy in mutations(base, names, required).items():
        for n, mutation in enumerate(examples(strategy)):
            unique = {**base, "ppn_id": f"PPN-FZ-{kind[:4]}-{n}"}
            lines.append(render(unique, mutation))
            inputs[kind] += 1
    (state / "inbox").mkdir(parents=True)
    (state / "inbox" / "hostile.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    inputs["symlinks"] += _symlinks(state / "inbox", tmp_path / "police-secret.txt", ".jsonl")
    return ConnectorRun("police", inputs, _run(connector, settings, state))


def run_health(settings: Settings, tmp_path: Path) -> ConnectorRun:
    state = tmp_path / "health"
    connector = build_connector("health", state, overrides={"inbox": state / "inbox", "settle_s": 0})
    sample = json.loads(connector.sample.read_text())
    encounter = next(e for e in sample["entry"] if e["resource"]["resourceType"] == "Encounter")
    reference = encounter["resource"]["subject"]["reference"]
    patient = next(e for e in sample["entry"] if e.get("fullUrl") == reference)
    base = {**sample, "entry": [patient, encounter]}
    e, p = ("entry", 1, "resource"), ("entry", 0, "resource")
    names = [(*p, "name", 0, "family"), (*p, "name", 0, "given", 0), (*p, "identifier", 0, "value"),
             (*p, "address", 0, "postalCode"), (*e, "identifier", 0, "value")]
    required = [(*e, "subject"), (*e, "period"), (*e, "identifier"), (*p, "birthDate"), (*e, "subject", "reference"),
                (*e, "period", "start"), (*p, "name")]
    inputs: Counter[str] = Counter()
    inbox = state / "inbox"
    inbox.mkdir(parents=True)
    for kind, strategy in mutations(base, names, required).items():
        for n, mutation in enumerate(examples(strategy)):
            unique = json.loads(json.dumps(base))
            unique["entry"][1]["resource"]["identifier"][0]["value"] = f"ED-FZ-{len(inputs)}-{n}"
            (inbox / f"{kind.replace(' ', '_').replace('/', '_')}-{n}.json").write_bytes(render(unique, mutation))
            inputs[kind] += 1
    inputs["symlinks"] += _symlinks(inbox, tmp_path / "health-secret.json", ".json")
    return ConnectorRun("health", inputs, _run(connector, settings, state))


EDUCATION_COLUMNS = ["concern_id", "pupil_id", "upn", "nhs_number", "forename", "surname", "dob", "sex", "postcode",
                     "school_urn", "concern_kind", "attendance_percent", "previous_attendance_percent",
                     "safeguarding_category", "detail", "logged_at", "updated_at"]


def run_education(settings: Settings, tmp_path: Path) -> ConnectorRun:
    """Rows of the polled views as tables (SQLite keeps whatever type a row gives), and a third table
    with a column the mapping does not know."""
    state = tmp_path / "education"
    state.mkdir(parents=True)
    database = state / "school.db"
    tables = ("mash_attendance", "mash_safeguarding", "mash_extra")
    connector = build_connector("education", state, overrides={
        "url": f"sqlite:///{database}", "safety_lag_s": 0,
        "streams": [{"table": t, "cursor": "updated_at", "key": "concern_id"} for t in tables]})
    base = {"concern_id": "ATT-1", "pupil_id": "P1", "upn": None, "nhs_number": "9578308620", "forename": "Amelia",
            "surname": "Hughes", "dob": "2016-04-12", "sex": "F", "postcode": "LS6 2QT", "school_urn": "107942",
            "concern_kind": "ATTENDANCE_DROP", "attendance_percent": 71.5, "previous_attendance_percent": 96.0,
            "safeguarding_category": None, "detail": "x", "logged_at": "2026-11-06T15:15:00Z",
            "updated_at": "2026-11-06 15:15:00"}
    leaves = [(c,) for c in EDUCATION_COLUMNS if c not in ("updated_at", "concern_id")]
    names = [("forename",), ("surname",), ("pupil_id",), ("postcode",), ("upn",), ("concern_id",)]
    required = [("pupil_id",), ("logged_at",), ("concern_kind",), ("school_urn",), ("dob",), ("sex",)]
    kinds = mutations({c: base[c] for c in EDUCATION_COLUMNS if (c,) in leaves}, names, required, json_source=False)
    kinds["empty cursor"] = st.just(Mutation("empty cursor", ("updated_at",), Value("null", None)))
    db = sqlite3.connect(database)
    for table in tables:
        extra = ", zz_unknown TEXT" if table == "mash_extra" else ""
        db.execute(f"CREATE TABLE {table} ({', '.join(EDUCATION_COLUMNS)}{extra})")
    inputs: Counter[str] = Counter()
    for kind, strategy in kinds.items():
        for n, mutation in enumerate(examples(strategy)):
            row = {**base, "concern_id": f"FZ-{len(inputs)}-{n}"}
            table = tables[n % 2]
            if kind == "unknown fields":
                table, row = "mash_extra", {**row, "zz_unknown": "surprise"}
            elif mutation.value is None:
                row[str(mutation.path[0])] = None  # a column cannot be absent: empty instead
            elif mutation.path == ("concern_id",):
                row["concern_id"] = f"{row['concern_id']}-{mutation.value.db!s}"  # still unique
            else:
                row[str(mutation.path[0])] = mutation.value.db
            marks = ", ".join("?" * len(row))
            db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", list(row.values()))
            inputs[kind] += 1
    db.commit()
    db.close()
    return ConnectorRun("education", inputs, _run(connector, settings, state))


def run_social_care(settings: Settings, tmp_path: Path) -> ConnectorRun:
    """Each hostile record pushed as its own request to the real endpoint (in-process, on a free port)."""
    state = tmp_path / "social_care"
    connector = build_connector("social_care", state, overrides={"port": 0, "max_body_bytes": 2_000_000})
    base = _sample_fields(connector)
    names = [("first_name",), ("last_name",), ("lcs_person_id",), ("postcode",), ("case_event_id",), ("upn",)]
    required = [("case_event_id",), ("lcs_person_id",), ("occurred_at",), ("kind",), ("dob",), ("gender",)]
    source = HttpPushSource(connector.config, token=PUSH_TOKEN)  # type: ignore[arg-type]
    reports: list[RunReport] = []
    running = threading.Thread(target=lambda: reports.append(_run(connector, settings, state, source)))
    running.start()
    wait_for(lambda: source._ready.is_set(), 60, "the push endpoint to listen")
    url = f"http://{connector.config.host}:{source.port}{connector.config.path}"  # type: ignore[attr-defined]
    inputs: Counter[str] = Counter()
    answers: Counter[int] = Counter()
    for kind, strategy in mutations(base, names, required).items():
        for n, mutation in enumerate(examples(strategy)):
            record = render({**base, "case_event_id": f"LCS-FZ-{len(inputs)}-{n}"}, mutation)
            answers[_post(url, record if kind == "malformed JSON" else b"[" + record + b"]")] += 1
            inputs[kind] += 1
    source.stop()
    running.join(timeout=60)
    assert reports, "the push connector's run did not end"
    assert set(answers) <= {202, 400, 413, 422}, answers
    return ConnectorRun("social_care", inputs, reports[0], refused_at_the_door=answers[413])


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Bearer {PUSH_TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# --- hostile messages onto the hub's topics ---------------------------------------------------------------

HOSTILE_STRING = st.one_of(
    st.text(max_size=30),
    st.sampled_from([*HTML_SQL, LONE, "\x00", "a\x00b", "", "e" * 40]),
    st.integers(60, 400).map(lambda n: "L" * n),
    st.integers(1_000, 20_000).map(lambda n: "H" * n),
)
PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "string": HOSTILE_STRING, "bytes": st.binary(max_size=40), "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1), "float": st.floats(width=32), "double": st.floats(),
    "boolean": st.booleans(), "null": st.none(),
}


def avro_values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Records valid for an Avro schema (as fastavro parsed it), with hostile strings and extreme numbers."""
    if isinstance(schema, list):
        return st.one_of([avro_values(s, named) for s in schema])
    if isinstance(schema, str):
        return avro_values(named[schema], named) if schema in named else PRIMITIVES[schema]
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "uuid":
        return st.one_of(st.uuids().map(str), HOSTILE_STRING)
    if logical in ("timestamp-millis", "date"):
        bound = 2**62 if logical == "timestamp-millis" else 2**31 - 1
        return st.one_of(st.integers(0, 4_102_444_800_000 if logical == "timestamp-millis" else 60_000),
                         st.integers(-bound, bound))
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: avro_values(f["type"], named) for f in schema["fields"]})
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(avro_values(schema["items"], named), max_size=3)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), avro_values(schema["values"], named), max_size=3)
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    return avro_values(kind, named)


def encoded(codec: Codec, name: str) -> st.SearchStrategy[bytes]:
    """Valid single-object Avro of `name`'s latest version with hostile values (lone surrogates
    written into strings after encoding, where a marker stood)."""
    schema = codec.catalogue.latest(name).expanded

    def encode(record: dict[str, Any]) -> bytes | None:
        _own_event_id(record)
        try:
            return codec.encode(record, name, check_types=False).replace(LONE.encode(), LONE_BYTES)
        except Exception:  # noqa: BLE001 - a draw fastavro cannot write at all is not a message
            return None

    values = avro_values(schema, schema.get("__named_schemas", {})).map(encode)
    return values.filter(lambda v: v is not None).map(lambda v: v or b"")


def _own_event_id(record: dict[str, Any]) -> None:
    """Each drawn event its own id (a hostile one stays hostile), so an outcome names one input."""
    envelope = record.get("envelope")
    holder: dict[str, Any] = envelope if isinstance(envelope, dict) else record
    if isinstance(holder.get("event_id"), str) and "retired_person_id" not in holder:
        try:
            holder["event_id"] = str(uuid.UUID(holder["event_id"]) and uuid.uuid4())
        except ValueError:
            holder["event_id"] = f"{holder['event_id']}{uuid.uuid4().hex[:8]}"


def hub_kinds(codec: Codec, topic: str) -> dict[str, st.SearchStrategy[bytes]]:
    own = sorted(ACCEPTED[topic])
    foreign = sorted(set(codec.catalogue.families()) - ACCEPTED[topic] - {"uk.mash.Envelope"})
    kinds = {
        "random bytes": st.binary(min_size=0, max_size=200),
        "unknown fingerprint": st.binary(min_size=8, max_size=8).flatmap(
            lambda fp: st.binary(max_size=50).map(lambda body: MAGIC + fp + body)),
        "wrong schema": st.sampled_from(foreign).flatmap(lambda name: encoded(codec, name)),
        "truncated Avro": st.sampled_from(own).flatmap(lambda name: encoded(codec, name)).flatmap(
            lambda v: st.integers(0, max(0, len(v) - 1)).map(lambda n: v[:n])),
        "right schema, hostile values": st.sampled_from(own).flatmap(lambda name: encoded(codec, name)),
    }
    if topic.startswith("mash.inbound."):
        agency = topic.split(".")[2]
        kinds["written as another agency"] = _as_another_agency(codec, agency)
    return kinds


def _as_another_agency(codec: Codec, agency: str) -> st.SearchStrategy[bytes]:
    """A good event of the topic's own schema, but claiming another agency (a compromised feed)."""
    connector = build_connector(agency, Path("/nonexistent"))
    event = connector.to_event(connector.map(_sample_fields(connector)))
    others = sorted({"POLICE", "HEALTH", "EDUCATION", "SOCIAL_CARE", "UNKNOWN"} - {agency.upper()})

    def written_as(claimed: str) -> bytes:
        envelope = {**event["envelope"], "source_agency": claimed, "event_id": str(uuid.uuid4())}
        return codec.encode({**event, "envelope": envelope}, connector.schema)

    return st.sampled_from(others).map(written_as)


MUST_BE_DEAD_LETTERED = {"random bytes", "unknown fingerprint", "wrong schema", "truncated Avro",
                         "written as another agency"}


@dataclass(frozen=True)
class Sent:
    topic: str  # catalogue name
    partition: int
    offset: int
    kind: str


def send_hostile_messages(settings: Settings, codec: Codec) -> list[Sent]:
    producer = KafkaProducer(**operator_client(settings), acks="all", max_request_size=2_000_000)
    futures = []
    for topic in sorted({t for inputs in HUB_STAGE_INPUTS.values() for t in inputs}):
        for kind, strategy in hub_kinds(codec, topic).items():
            for value in examples(strategy):
                futures.append((topic, kind, producer.send(topic_name(topic, settings), key=b"fuzz", value=value)))
    producer.flush()
    producer.close()
    return [Sent(t, f.get().partition, f.get().offset, kind) for t, kind, f in futures]


# --- the accounting ------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Every message on the hub's input topics, and what became of it."""

    letters: Counter[tuple[str, int, int]]  # hub dead letters per (topic, partition, offset) they name
    unaccounted: list[str]  # messages with no outcome
    twice: list[str]  # messages (or events) with more than one
    undecodable_without_letter: list[str]
    outcomes: set[str]
    connector_letters: Counter[str]
    lag: int | None


def _read(consumer: KafkaConsumer, topic: str) -> list[Any]:
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records: list[Any] = []
    remaining = {tp for tp in partitions if end[tp] > 0}
    while remaining:
        for tp, batch in consumer.poll(timeout_ms=1000).items():
            records.extend(batch)
            if batch and batch[-1].offset + 1 >= end[tp]:
                remaining.discard(tp)
    return records


def _event_id(codec: Codec, value: bytes) -> str | None:
    """The event a message carries (inbound, enriched or shared), or None (a merge, a decision, an
    answer, or nothing decodable)."""
    try:
        record, writer = codec.decode(value)
    except Exception:  # noqa: BLE001 - hostile bytes
        return None
    if writer.name in INBOUND_SCHEMAS.values() or writer.name == "uk.mash.hub.EnrichedEvent":
        return str(record["envelope"]["event_id"])
    if writer.name == "uk.mash.hub.SharedEvent":
        return str(record["event_id"])
    return None


def ledger(settings: Settings, engine: Engine, codec: Codec) -> Ledger:
    consumer = KafkaConsumer(**operator_client(settings), enable_auto_commit=False)
    try:
        letters, lettered_events, connector_letters = _dead_letters(consumer, settings, codec)
        with engine.connect() as db:
            outcomes = set(db.scalars(select(EventOutcomeRecord.event_id)))
        books = Ledger(letters, [], [], [], outcomes, connector_letters, None)
        for topic in sorted({t for inputs in HUB_STAGE_INPUTS.values() for t in inputs}):
            for message in _read(consumer, topic_name(topic, settings)):
                _account(books, (topic, message.partition, message.offset), message.value, lettered_events, codec)
        books.lag = _hub_lag(consumer, settings)
        return books
    finally:
        consumer.close()


def _dead_letters(consumer: KafkaConsumer, settings: Settings, codec: Codec
                  ) -> tuple[Counter[tuple[str, int, int]], Counter[str], Counter[str]]:
    """Hub dead letters per message they name, and per event they carry; connector dead letters per stage."""
    letters: Counter[tuple[str, int, int]] = Counter()
    lettered_events: Counter[str] = Counter()
    connector_letters: Counter[str] = Counter()
    for message in _read(consumer, topic_name(DEADLETTER, settings)):
        letter, _ = codec.decode(message.value)
        if letter["stage"].startswith("connector:"):
            connector_letters[letter["stage"]] += 1
            continue
        topic = str(letter["original_topic"]).removeprefix(settings.topic_prefix)
        letters[(topic, letter["original_partition"], letter["original_offset"])] += 1
        event = None if letter["original_truncated"] else _event_id(codec, letter["original"])
        if event:
            lettered_events[event] += 1
    return letters, lettered_events, connector_letters


def _account(books: Ledger, where: tuple[str, int, int], value: bytes, lettered_events: Counter[str],
             codec: Codec) -> None:
    """One message: its own dead letter, or (an event) its outcome or a later stage's dead letter of it."""
    lettered = books.letters[where]
    if lettered > 1:
        books.twice.append(f"{where}: {lettered} dead letters")
    if lettered:
        return
    event = _event_id(codec, value)
    if event is None:
        try:
            codec.decode(value)
        except Exception:  # noqa: BLE001 - hostile bytes
            books.undecodable_without_letter.append(f"{where}: undecodable, no dead letter")
        return  # a merge, decision or answer applied (or found to change nothing)
    if event in books.outcomes and lettered_events[event]:
        books.twice.append(f"{where}: event {event} has an outcome and a later stage's dead letter")
    elif event not in books.outcomes and not lettered_events[event]:
        books.unaccounted.append(f"{where}: event {event} has no outcome")


def _hub_lag(consumer: KafkaConsumer, settings: Settings) -> int | None:
    """What every hub stage has yet to commit; None until each has committed."""
    total = 0
    for stage, inputs in HUB_STAGE_INPUTS.items():
        lag = group_lag(settings.bootstrap_servers, stage_group(stage, settings),
                        [topic_name(t, settings) for t in inputs], consumer,
                        client=kafka_python_options(settings, OPERATOR))
        if lag is None:
            return None
        total += sum(lag.values())
    return total


def _good_events(settings: Settings, tmp_path: Path) -> list[str]:
    """One good event of each agency through its real mapping, after everything hostile."""
    ids = []
    for agency in AGENCIES:
        connector = build_connector(agency, tmp_path / "good")
        fields = {**_sample_fields(connector)}
        ids.append(publish_record(settings, tmp_path / "good", agency, fields)["event_id"])
    return ids


def test_hostile_input_through_every_connector_and_onto_every_hub_topic_each_ends_in_one_outcome(
        provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path,
        database_url: str) -> None:
    worker = hub_worker()
    codec = Codec()
    runs = [run(provisioned, tmp_path) for run in (run_police, run_health, run_education, run_social_care)]
    sent = send_hostile_messages(provisioned, codec)
    good = _good_events(provisioned, tmp_path)

    tried: Counter[str] = Counter()
    for run in runs:
        tried.update({f"{run.name}: {kind}": n for kind, n in run.inputs.items()})
    tried.update(f"{s.topic}: {s.kind}" for s in sent)
    print(f"\nhostile fuzz on {database_url.split(':')[0]}: {sum(tried.values())} inputs "
          f"({sum(sum(r.inputs.values()) for r in runs)} through connectors, {len(sent)} onto hub topics)")
    for what, n in sorted(tried.items()):
        print(f"  {n:4d}  {what}")

    def settled() -> Ledger | None:
        if worker.poll() is not None:
            pytest.fail(f"the hub worker exited with {worker.returncode}")
        books = ledger(provisioned, engine, codec)
        done = books.lag == 0 and not books.unaccounted and set(good) <= books.outcomes
        return books if done else None

    try:
        books = wait_for(settled, timeout_s=240, what="every hostile input to have its outcome")
    except AssertionError:
        books = ledger(provisioned, engine, codec)
        raise AssertionError(f"lag {books.lag}; unaccounted {books.unaccounted[:10]}; twice {books.twice[:10]}; "
                             f"good events without outcome {set(good) - books.outcomes}") from None
    for run in runs:  # each input one record, produced or dead-lettered (or refused at the door)
        report = run.report
        assert report.read + run.refused_at_the_door == sum(run.inputs.values()), (run.name, report, run.inputs)
        assert report.read == report.produced + report.dead_lettered, (run.name, report)
        assert books.connector_letters[f"connector:{run.name}"] == report.dead_lettered, (run.name, report)
    letters = {s: books.letters[(s.topic, s.partition, s.offset)] for s in sent if s.kind in MUST_BE_DEAD_LETTERED}
    assert all(n == 1 for n in letters.values()), [(s, n) for s, n in letters.items() if n != 1][:10]
    assert not books.twice, books.twice[:10]
    assert not books.undecodable_without_letter, books.undecodable_without_letter[:10]
    assert worker.poll() is None, "the hub worker exited"
