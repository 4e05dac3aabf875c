"""An inbound topic vouches for its agency: an event on it written as another agency, or in another
agency's schema, is dead-lettered by enrichment before the person index meets it (issue 16)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from mash.codec import Codec
from mash.models import Base
from mash.topics import AGENCIES, INBOUND_SCHEMAS, inbound
from services.enrichment.stage import misplaced


@pytest.mark.parametrize("agency", AGENCIES)
def test_an_agencys_own_schema_written_as_itself_belongs_on_its_topic_whatever_the_prefix(agency: str) -> None:
    for topic in (inbound(agency), f"t1234.{inbound(agency)}"):
        assert misplaced(topic, INBOUND_SCHEMAS[agency], agency.upper()) is None


@pytest.mark.parametrize("claimed", ["HEALTH", "EDUCATION", "SOCIAL_CARE", "UNKNOWN"])
def test_an_event_on_the_police_topic_claiming_another_agency_is_misplaced(claimed: str) -> None:
    reason = misplaced(f"p.{inbound('police')}", INBOUND_SCHEMAS["police"], claimed)
    assert reason is not None and claimed in reason and "POLICE" in reason


def test_another_agencys_schema_on_a_topic_is_misplaced_even_written_as_the_topics_agency() -> None:
    reason = misplaced(inbound("police"), INBOUND_SCHEMAS["health"], "POLICE")
    assert reason is not None and INBOUND_SCHEMAS["health"] in reason


def test_an_inbound_event_on_a_topic_that_is_no_agencys_is_misplaced() -> None:
    assert misplaced("mash.match_answers.v1", INBOUND_SCHEMAS["police"], "POLICE") is not None


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _police_events(tmp_path: Path, n: int) -> list[dict[str, Any]]:
    from connectors.registry import build_connector

    connector = build_connector("police", tmp_path / "connector")
    sample = [r.fields for r in connector.sample_records(connector.sample) if r.fields and not r.error]
    return [connector.to_event(connector.map({**sample[0], "ppn_id": f"PPN-AG-{i}", "person_ref": f"P-AG-{i}"}))
            for i in range(n)]


def test_enrichment_dead_letters_a_police_topic_event_written_as_health_and_links_the_rest(
        tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    from services.enrichment.person_index import PersonIndex
    from services.enrichment.stage import Enricher
    from services.messages import InMessage

    codec = Codec()
    events = _police_events(tmp_path, 3)
    events[1]["envelope"]["source_agency"] = "HEALTH"  # a compromised police feed writing as health
    batch = [InMessage(f"t.{inbound('police')}", 0, n, b"k", codec.encode(e, INBOUND_SCHEMAS["police"]))
             for n, e in enumerate(events)]
    out = Enricher(codec, PersonIndex(sessions)).process(batch)
    assert [m.topic for m in out] == ["mash.deadletter.v1", "mash.enriched.v1", "mash.enriched.v1"]
    headers = dict(out[0].headers)
    assert headers["mash.dlq.error_class"] == b"MisplacedEvent"
    assert b"source_agency HEALTH" in headers["mash.dlq.error_message"]
    linked = [codec.decode(m.value)[0]["envelope"]["event_id"] for m in out[1:]]
    assert linked == [events[0]["envelope"]["event_id"], events[2]["envelope"]["event_id"]]
