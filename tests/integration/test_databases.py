"""The person index and the triage store on a real database (SQLite, and PostgreSQL when given)."""

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from mash.db import make_engine, session_factory
from mash.models import AlertRecord, EventOutcomeRecord, Person, PersonIdentifier
from mash.settings import Settings
from services.enrichment.linking import Identifier
from services.enrichment.person_index import PersonIndex
from services.triage_store.store import TriageStore

NHS = Identifier("nhs", "9434765919")


def test_events_sharing_an_identifier_link_to_one_person(engine: Engine) -> None:
    index = PersonIndex(session_factory(engine))
    first, second = index.link_batch([("e1", [NHS, Identifier("local", "HEALTH:1")]),
                                      ("e2", [NHS, Identifier("local", "POLICE:9")])])
    third, = index.link_batch([("e3", [Identifier("local", "POLICE:9")])])
    assert first.method == "NEW_PERSON" and second.method == "NHS_NUMBER" and third.method == "LOCAL_ID"
    assert first.person_id == second.person_id == third.person_id
    with engine.connect() as db:
        assert db.scalar(select(func.count()).select_from(Person)) == 1
        assert db.scalar(select(func.count()).select_from(PersonIdentifier)) == 3


def test_two_workers_racing_on_a_new_child_create_one_person(settings: Settings, engine: Engine) -> None:
    engines = [make_engine(settings.sqlalchemy_url()) for _ in range(2)]
    indexes = [PersonIndex(session_factory(e)) for e in engines]
    start = threading.Barrier(2)
    results: list[str] = []

    def work(index: PersonIndex, n: int) -> None:
        start.wait()
        for i in range(20):
            ids = [Identifier("nhs", f"race-{i}"), Identifier("local", f"W{n}:{i}")]
            results.append(index.link_batch([(f"e{n}-{i}", ids)])[0].person_id)

    threads = [threading.Thread(target=work, args=(index, n)) for n, index in enumerate(indexes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for e in engines:
        e.dispose()
    with engine.connect() as db:
        persons = db.scalar(select(func.count()).select_from(Person))
        owners = db.scalar(select(func.count(func.distinct(PersonIdentifier.person_id)))
                           .where(PersonIdentifier.scheme == "nhs"))
    assert len(results) == 40
    assert persons == owners == 20


def alert(revision: int, rag: str) -> dict:  # type: ignore[type-arg]
    now = datetime(2026, 11, 25, tzinfo=UTC)
    return {"alert_id": "a1", "person_id": "p1", "revision": revision, "status": "OPEN", "rag": rag,
            "reasons": ["r"], "agencies": ["HEALTH", "POLICE"], "event_ids": ["e1", "e2"][:revision + 1],
            "opened_at": now, "updated_at": now}


def outcome(event_id: str, kind: str) -> dict:  # type: ignore[type-arg]
    return {"event_id": event_id, "person_id": "p1", "source_agency": "POLICE", "outcome": kind,
            "alert_id": None, "recorded_at": 1_764_000_000_000}


def test_triage_store_is_idempotent_and_keeps_the_latest_revision(engine: Engine) -> None:
    store = TriageStore(session_factory(engine))
    store.apply([alert(2, "RED"), alert(1, "AMBER")], [outcome("e1", "NO_ALERT")])
    store.apply([alert(1, "AMBER")], [outcome("e1", "NO_ALERT"), outcome("e1", "NO_ALERT"),
                                      outcome("e2", "ALERT_RAISED")])
    with engine.connect() as db:
        rows = db.execute(select(AlertRecord.revision, AlertRecord.rag)).all()
        outcomes = db.scalar(select(func.count()).select_from(EventOutcomeRecord))
    assert [tuple(r) for r in rows] == [(2, "RED")]
    assert outcomes == 2
