"""Possible matches answered by a person: the answer reaches the person index through the broker,
a confirmation merges the two persons and triage joins their alerts; a rejection keeps them apart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from mash.codec import Codec
from mash.db import session_factory
from mash.kafka_security import TRIAGE_APP, kafka_python_options
from mash.models import AlertRecord, MatchReview, Person, PersonMerge
from mash.settings import Settings
from mash.topics import DECISIONS, MATCH_ANSWERS, topic_name
from services.enrichment.comparisons import Profile
from services.enrichment.linking import Identifier
from services.enrichment.person_index import PersonIndex
from services.triage.scoring_file import load_scoring
from services.triage_app.accounts import create_user
from services.triage_app.outbox import Outbox
from services.triage_app.web import create_app
from services.triage_app.web_session import AppConfig
from tests.integration.conftest import wait_for
from tests.integration.test_databases import link
from tests.integration.test_identity import KAI, decided, publish
from tests.support.triage_data import NOW, PASSWORD

ASHA = Profile("ASHA", "KHAN", date(2015, 3, 4), "F", "LS61AB")
DOUBTFUL = Profile("ASHA", "KHAN", date(2015, 4, 3), "F", "M11AA")  # day and month swapped, moved house


def held_pair(index: PersonIndex) -> tuple[str, str]:
    known, = index.link_batch([link("e1", Identifier("nhs", "9434765919"), profile=ASHA)])
    held, = index.link_batch([link("e2", Identifier("local", "POLICE:5"), profile=DOUBTFUL)])
    assert held.decision.review_candidate == known.decision.person_id
    return held.decision.person_id, known.decision.person_id


def test_a_confirmed_match_merges_the_events_person_into_the_candidate(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    new, known = held_pair(index)
    assert index.answer("e2", True, "alice") == (new, known)
    assert index.answer("e2", True, "alice") == (new, known)  # redelivered: the same pair, merged once
    with engine.connect() as db:
        assert db.scalar(select(Person.merged_into).where(Person.person_id == new)) == known
        (merge,) = db.execute(select(PersonMerge)).all()
    assert merge.reason == "possible match confirmed by alice"
    again, = index.link_batch([link("e3", Identifier("local", "POLICE:5"), profile=DOUBTFUL)])
    assert again.decision.person_id == known  # later events of that agency id go to the child


def test_a_rejected_match_links_nothing(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    new, _ = held_pair(index)
    assert index.answer("e2", False, "alice") is None
    with engine.connect() as db:
        assert db.scalar(select(Person.merged_into).where(Person.person_id == new)) is None
    with pytest.raises(LookupError):
        index.answer("no-such-event", True, "alice")


def test_confirming_in_the_app_merges_in_the_hub_and_joins_the_alerts(
    provisioned: Settings, engine: Engine, hub_worker: Callable[[], Popen[bytes]], tmp_path: Path,
) -> None:
    hub_worker()
    first = {**KAI, "forename": "Asha", "surname": "Khan", "sex": "F", "ppn_id": "PPN-A-1", "person_ref": "WYP-A1",
             "nhs_number": "9434765919", "dob": "2015-03-04", "postcode": "LS6 1AB", "incident_ref": "1001",
             "occurred_at": "2026-11-20T10:00:00Z"}
    doubtful = {**first, "ppn_id": "PPN-A-2", "person_ref": "WYP-A2", "nhs_number": None, "dob": "2015-04-03",
                "postcode": "M1 1AA", "incident_ref": "1002", "occurred_at": "2026-11-21T10:00:00Z"}
    publish(provisioned, tmp_path, "police", first)
    wait_for(decided(provisioned, engine, 1), what="the first report")  # then the doubtful one meets it
    event_id = publish(provisioned, tmp_path, "police", doubtful)

    def review() -> Any:
        with engine.connect() as db:
            return db.execute(select(MatchReview).where(MatchReview.event_id == event_id)).first()

    held = wait_for(review, what="the doubtful event to be held for review")
    wait_for(lambda: len(_open_alerts(engine, held.person_id, held.candidate_person_id)) == 2,
             what="an alert for each person (each a child-at-risk report)")
    sessions = session_factory(engine)
    with sessions.begin() as session:
        create_user(session, "alice", "Alice", "triage_worker", "mash_social_worker", PASSWORD, NOW)
    outbox = Outbox(sessions, provisioned.bootstrap_servers, topic_name(DECISIONS, provisioned),
                    topic_name(MATCH_ANSWERS, provisioned), Codec(),
                    client=kafka_python_options(provisioned, TRIAGE_APP))
    client = TestClient(create_app(AppConfig(sessions, load_scoring(), "match-secret-" * 4, outbox)))
    token = client.post("/api/login", json={"username": "alice", "password": PASSWORD}).json()["csrf_token"]
    tasks = client.get("/api/matches").json()["matches"]
    assert [t["event_id"] for t in tasks] == [event_id]
    assert tasks[0]["event_side"]["given_name"] == "Asha"
    url = f"/api/matches/{event_id}/answer"
    assert client.post(url, json={"answer": "CONFIRMED"}).status_code == 403  # no CSRF token
    answered = client.post(url, json={"answer": "CONFIRMED"}, headers={"X-CSRF-Token": token})
    assert answered.status_code == 200 and "reach the hub" not in answered.json()["result"]
    assert client.post(url, json={"answer": "REJECTED"}, headers={"X-CSRF-Token": token}).status_code == 409
    outbox.close()

    def merged() -> bool:
        with engine.connect() as db:
            return db.scalar(select(PersonMerge.reason).where(PersonMerge.retired_person_id == held.person_id)) \
                == "possible match confirmed by alice"

    wait_for(merged, what="enrichment to merge the confirmed match")
    wait_for(lambda: len(_open_alerts(engine, held.person_id, held.candidate_person_id)) == 1,
             what="triage to join the two alerts into one")


def _open_alerts(engine: Engine, *person_ids: str) -> list[str]:
    with engine.connect() as db:
        return list(db.scalars(select(AlertRecord.alert_id).where(AlertRecord.person_id.in_(person_ids),
                                                                  AlertRecord.status == "OPEN")))
