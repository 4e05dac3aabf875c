"""A deployment run by the Faust hub is upgraded in place: its triage state and its progress carry over."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import CoordinatorNotAvailableError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine, select

from mash.db import session_factory
from mash.models import TriageStateRecord
from mash.settings import Settings
from mash.topics import ENRICHED, SHARED, stage_group, topic_name
from services.triage.correlation import PersonState, SeenEvent
from services.triage_store.store import TriageStore
from tests.integration.conftest import mash, wait_for
from tests.support.bus import operator_client

NOW = int(datetime(2026, 11, 30, 10, tzinfo=UTC).timestamp() * 1000)


def faust_hub_was_here(settings: Settings, engine: Engine) -> None:
    """What the Faust hub left: an alert in the store, its table's changelog, its group's commits."""
    TriageStore(session_factory(engine)).apply([{
        "alert_id": "a1", "person_id": "p1", "revision": 1, "status": "OPEN", "rag": "RED", "reasons": [],
        "agencies": ["POLICE"], "event_ids": ["e1"], "opened_at": NOW, "updated_at": NOW, "score": 80,
        "indicators": [], "scoring_version": "", "profile": "", "clock_started_at": None, "at_risk_at": None,
        "due_at": None}], [])
    state = PersonState(events=(SeenEvent("e1", "POLICE", NOW, "ALERT_RAISED", "a1", ("police_high_risk",)),))
    changelog = f"{settings.app_id}-triage-state-changelog"
    admin = KafkaAdminClient(**operator_client(settings))
    admin.create_topics([NewTopic(changelog, 2, 1, topic_configs={"cleanup.policy": "compact"})])
    producer = KafkaProducer(**operator_client(settings), acks="all")
    for key, value in ((b'"p1"', json.dumps(state.to_json()).encode()), (b'"p2"', b'{"events": []}'),
                       (b'"p2"', None)):
        producer.send(changelog, key=key, value=value, partition=0)
    producer.flush()
    producer.close()
    offsets = {TopicPartition(topic_name(ENRICHED, settings), 0): OffsetAndMetadata(5, "", -1),
               TopicPartition(topic_name(SHARED, settings), 1): OffsetAndMetadata(7, "", -1)}

    def committed() -> bool:  # a fresh broker has no group coordinator until its offsets topic exists
        try:
            admin.alter_group_offsets(settings.app_id, offsets)
        except CoordinatorNotAvailableError:
            return False
        return True

    wait_for(committed, what="the group coordinator to take the Faust hub's offsets")
    admin.close()


def test_a_faust_hubs_database_is_refused_until_its_state_and_offsets_are_carried_over(
    provisioned: Settings, engine: Engine
) -> None:
    faust_hub_was_here(provisioned, engine)
    refused = mash(provisioned, "hub", "worker", check=False)
    assert refused.returncode == 2 and "mash hub upgrade-state" in refused.stderr

    upgraded = mash(provisioned, "hub", "upgrade-state")
    assert "1 persons loaded" in upgraded.stdout
    with engine.connect() as db:
        rows = db.execute(select(TriageStateRecord.person_id, TriageStateRecord.state)).all()
    assert [r.person_id for r in rows] == ["p1"]  # p2 was deleted from the table
    carried = PersonState.from_json(json.loads(rows[0].state))
    assert [e.event_id for e in carried.events] == ["e1"] and carried.events[0].indicators == ("police_high_risk",)
    admin = KafkaAdminClient(**operator_client(provisioned))
    sharing = admin.list_group_offsets(stage_group("sharing", provisioned))[stage_group("sharing", provisioned)]
    triage = admin.list_group_offsets(stage_group("triage", provisioned))[stage_group("triage", provisioned)]
    admin.close()
    assert sharing[TopicPartition(topic_name(ENRICHED, provisioned), 0)].offset == 5
    assert triage[TopicPartition(topic_name(SHARED, provisioned), 1)].offset == 7
