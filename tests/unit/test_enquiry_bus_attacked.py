"""Attacks on the connector side of the MASH enquiry, without a broker: the SDK's RequestAnswerer fed
garbage and off-topic records, a source that is down, the education answerer given hostile identity
values and names outside ASCII, and triage's topic check for an enquiry decision."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from connectors.education.answers import answer_from
from connectors.education.connector import EducationConnector
from connectors.sdk.answering import Draft, RequestAnswerer, SourceUnavailable
from mash.codec import Codec
from mash.topics import DECISIONS, SHARED
from services.enquiry.catalogue import Prompt
from services.enquiry.returns import ReturnRefused, checked_return
from services.triage.stage import ENQUIRY_DECISION_SCHEMA, off_topic

CODEC = Codec()
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PROMPTS = [{"id": "attendance", "text": "Attendance"}, {"id": "concerns", "text": "Concerns"}]


def _request(identity: dict[str, str], prompts: list[dict[str, str]] = PROMPTS) -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "enquiry_id": str(uuid.uuid4()), "agency": "education",
            "purpose": "Is Ava safe?", "lawful_basis": "CHILDREN_ACT_2004_S11", "consent": "GIVEN", "rag": "AMBER",
            "sent_at": NOW, "due_at": NOW, "prompts": prompts,
            "subjects": [{"person_id": str(uuid.uuid4()), "relation": "child", "identity": identity}],
            "audit_ref": "ref"}


class _Future:
    def get(self, timeout: float) -> None:
        return None


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"", headers: Any = None) -> _Future:
        self.sent.append((topic, value))
        return _Future()


class _Consumer:
    def __init__(self, values: list[bytes]) -> None:
        self.batch = {("requests", 0): [SimpleNamespace(topic="requests", partition=0, offset=n, key=b"k", value=v)
                                        for n, v in enumerate(values)]}
        self.commits = 0

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        batch, self.batch = self.batch, {}
        return batch

    def commit(self) -> None:
        self.commits += 1

    def seek(self, tp: Any, offset: int) -> None:
        self.sought = (tp, offset)


def _answerer(values: list[bytes], answer: Any) -> tuple[RequestAnswerer, _Consumer, _Producer]:
    fed: list[dict[str, Any]] = []
    answerer = RequestAnswerer("nowhere:9092", "education", "requests", "returns", "deadletter", "g", answer,
                               "school-connector", feedback=fed.append, clock=lambda: NOW)
    consumer, producer = _Consumer(values), _Producer()
    answerer._consumer, answerer._producer = consumer, producer
    return answerer, consumer, producer


def test_garbage_and_off_topic_records_are_dead_lettered_and_the_requests_after_them_answered() -> None:
    request = _request({"subject.upn": "A820200114934"})
    decision = CODEC.encode({"enquiry_id": str(uuid.uuid4()), "alert_id": str(uuid.uuid4()),
                             "person_id": str(uuid.uuid4()), "level": 1, "outcome": "ADVICE", "factors": [],
                             "rationale": "", "decided_by": "x", "decided_at": NOW, "audit_ref": ""},
                            ENQUIRY_DECISION_SCHEMA)
    values = [b"", b"\x00\xff" * 1000, CODEC.encode(request, "uk.mash.hub.InformationRequest")[:-5], decision,
              CODEC.encode(request, "uk.mash.hub.InformationRequest")]
    answerer, consumer, producer = _answerer(values, lambda r: Draft("NIL", systems_searched=("SIMS",)))
    report = answerer.poll_once()
    assert (report.answered, report.dead_letters, report.left_to_portal) == (1, 4, 0)
    assert [t for t, _ in producer.sent] == ["deadletter"] * 4 + ["returns"]
    answered, writer = CODEC.decode(producer.sent[-1][1])
    assert writer.name == "uk.mash.hub.InformationReturn" and answered["request_id"] == request["request_id"]
    assert answered["agency"] == "education" and consumer.commits == 1


def test_a_connector_that_raises_dead_letters_that_request_only() -> None:
    first, second = _request({"subject.upn": "X1"}), _request({"subject.upn": "X2"})

    def answer(request: dict[str, Any]) -> Draft:
        if request["request_id"] == first["request_id"]:
            raise KeyError("a bug in the connector")
        return Draft("NIL", systems_searched=("SIMS",))

    answerer, _, producer = _answerer([CODEC.encode(r, "uk.mash.hub.InformationRequest") for r in (first, second)],
                                      answer)
    report = answerer.poll_once()
    assert (report.answered, report.dead_letters) == (1, 1)
    assert [t for t, _ in producer.sent] == ["deadletter", "returns"]


def test_a_source_outage_leaves_the_request_to_be_read_again() -> None:
    def down(request: dict[str, Any]) -> Draft:
        raise OperationalError("SELECT", {}, Exception("could not connect to server"))

    answerer, consumer, producer = _answerer(
        [CODEC.encode(_request({"subject.upn": "A820200114934"}), "uk.mash.hub.InformationRequest")], down)
    with contextlib.suppress(SourceUnavailable):
        answerer.poll_once()
    assert consumer.commits == 0 and producer.sent == []
    assert consumer.sought == (("requests", 0), 0)  # read again from the batch's start


@pytest.fixture
def school(tmp_path: Path) -> Engine:
    path = tmp_path / "school.db"
    with sqlite3.connect(path) as db:
        db.executescript(EducationConnector.sample.read_text())
    return create_engine(f"sqlite:///{path}")


def test_the_sample_child_is_found_by_upn_and_by_name(school: Engine) -> None:
    by_upn = answer_from(school, _request({"subject.upn": "A820200114934"}))
    by_name = answer_from(school, _request({"subject.given_name": " AVA ", "subject.family_name": "okafor",
                                            "subject.date_of_birth": "2013-11-30"}))
    assert by_upn is not None and by_upn.answer == "HELD" and by_name == by_upn


@pytest.mark.parametrize("identity", [
    {"subject.upn": "' OR '1'='1"}, {"subject.upn": "A820200114934' --"}, {"subject.upn": "%"},
    {"subject.given_name": "' OR 1=1 --", "subject.family_name": "x", "subject.date_of_birth": "' OR ''='"},
    {"subject.given_name": "%", "subject.family_name": "%", "subject.date_of_birth": "%"},
    {"subject.upn": "x'); DROP TABLE pupils; --"}, {"subject.upn": "A" * 100_000},
])
def test_hostile_identity_values_find_no_one_and_change_nothing(school: Engine, identity: dict[str, str]) -> None:
    draft = answer_from(school, _request(identity))
    assert draft == Draft("NIL", systems_searched=("school information system",))
    assert answer_from(school, _request({"subject.upn": "A820200114934"})).answer == "HELD"  # type: ignore[union-attr]


@pytest.mark.parametrize("identity", [{}, {"subject.upn": "   "}, {"subject.given_name": "Ava"},
                                      {"subject.given_name": "Ava", "subject.family_name": "Okafor"}])
def test_too_little_to_search_on_is_left_to_the_portal(school: Engine, identity: dict[str, str]) -> None:
    assert answer_from(school, _request(identity)) is None


def test_a_child_whose_name_is_not_ascii_is_found_by_name(school: Engine) -> None:
    with school.begin() as db:
        db.exec_driver_sql("UPDATE pupils SET forename = 'Émile', surname = 'Öztürk' WHERE upn = 'A820200114934'")
    found = answer_from(school, _request({"subject.given_name": "Émile", "subject.family_name": "Öztürk",
                                          "subject.date_of_birth": "2013-11-30"}))
    assert found is not None and found.answer == "HELD"


def test_checked_return_refuses_a_nul_in_a_system_searched() -> None:
    with pytest.raises(ReturnRefused):
        checked_return("NIL", [Prompt("attendance", "Attendance")], {}, "", "", date(2026, 11, 25),
                       ["SIMS\x00"], date(2026, 11, 25), date(2026, 11, 25))


def test_an_enquiry_decision_belongs_on_the_decisions_topic_only() -> None:
    assert off_topic(SHARED, ENQUIRY_DECISION_SCHEMA) is not None
    assert off_topic(f"test.{SHARED}", ENQUIRY_DECISION_SCHEMA) is not None
    assert off_topic(DECISIONS, ENQUIRY_DECISION_SCHEMA) is None
