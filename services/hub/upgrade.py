"""Moving a deployment from the Faust hub (one consumer group, triage state in a Faust table) to
per-stage consumer groups with triage state in SQL, without replaying or forgetting anything.

Without this, the new groups would read every retained message again, and triage, starting from
no state, would decide them afresh: second outcomes, and children whose alerts opened on events
past retention would get a second open alert. So a worker refuses to start triage on a database
that holds alerts but no triage state, and `mash hub upgrade-state` (run once, every worker
stopped) loads the Faust table's changelog into `triage_states` and starts each stage's group
where the old group had got to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from mash.kafka_security import OPERATOR, kafka_python_options
from mash.models import AlertRecord, TriageStateRecord
from mash.settings import Settings
from mash.topics import HUB_STAGE_INPUTS, stage_group, topic_name
from services.triage.correlation import PersonState

FAUST_TABLE = "triage-state"


class UpgradeNeeded(RuntimeError):
    """The database was last run by the Faust hub: its triage state is still in Kafka."""


@dataclass(frozen=True)
class Upgraded:
    states: int
    groups: dict[str, int]  # stage group -> partitions started where the old group was


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-{FAUST_TABLE}-changelog"  # Faust's name for the table's changelog


def check(sessions: sessionmaker[Session]) -> None:
    """Refuse to run triage on a Faust hub's database before `mash hub upgrade-state`."""
    with sessions() as session:
        alerts = session.scalar(select(func.count()).select_from(AlertRecord)) or 0
        states = session.scalar(select(func.count()).select_from(TriageStateRecord)) or 0
    if alerts and not states:
        raise UpgradeNeeded(
            f"the database holds {alerts:,} alerts but no triage state: it was last run by a hub that kept "
            "triage state in Kafka (Faust). Stop every hub worker, run `mash hub upgrade-state` once, then "
            "start the workers again (see README, Upgrading).")


def upgrade_state(settings: Settings, bootstrap: str, sessions: sessionmaker[Session]) -> Upgraded:
    states = _load_changelog(bootstrap, changelog_topic(settings), kafka_python_options(settings, OPERATOR))
    now = datetime.now(UTC)
    with sessions.begin() as session:
        present = set(session.scalars(select(TriageStateRecord.person_id)))
        rows = [{"person_id": p, "version": 1, "state": orjson.dumps(PersonState.from_json(s).to_json()).decode(),
                 "updated_at": now} for p, s in states.items() if p not in present]
        if rows:
            session.execute(insert(TriageStateRecord), rows)
    return Upgraded(len(rows), _carry_offsets(settings, bootstrap))


def _load_changelog(bootstrap: str, topic: str, client: dict[str, Any]) -> dict[str, dict[str, object]]:
    """The table as Faust left it: the last value per key (JSON key and value; None deletes)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return {}
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        table: dict[str, dict[str, object]] = {}
        remaining = {tp for tp in partitions if end[tp]}
        while remaining:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    key = json.loads(record.key)
                    value = json.loads(record.value) if record.value else None
                    if value:
                        table[str(key)] = value
                    else:
                        table.pop(str(key), None)
                if records and records[-1].offset + 1 >= end[tp]:
                    remaining.discard(tp)
        return table
    finally:
        consumer.close()


def _carry_offsets(settings: Settings, bootstrap: str) -> dict[str, int]:
    """Each stage group starts where the old group (`app_id`) committed, unless it has commits of its own."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-upgrade",
                             **kafka_python_options(settings, OPERATOR))
    try:
        old = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        carried: dict[str, int] = {}
        for stage, inputs in HUB_STAGE_INPUTS.items():
            group = stage_group(stage, settings)
            if admin.list_group_offsets(group).get(group):
                continue  # already running under the new scheme: leave it be
            topics = {topic_name(t, settings) for t in inputs}
            offsets = {tp: OffsetAndMetadata(o.offset, "", -1) for tp, o in old.items()
                       if tp.topic in topics and o.offset >= 0}
            if offsets:
                admin.alter_group_offsets(group, offsets)
            carried[group] = len(offsets)
        return carried
    finally:
        admin.close()
