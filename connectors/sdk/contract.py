"""The contract a connector implements: declare what it is and its configuration, name its
source, and map one source record to an event.

Everything else (reading the source, building the envelope, Avro encoding, the Kafka key,
producing, confirmation, checkpoints, retries, the dead-letter path) belongs to the SDK, so a
connector stays a page long.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from connectors.sdk.config import ConnectorConfig
from mash.kafka_security import connector as connector_principal
from mash.limits import ENVELOPE_CHARS
from mash.topics import INBOUND_SCHEMAS, inbound

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from connectors.sdk.answering import Draft
    from connectors.sdk.sources.base import Source, SourceRecord
    from connectors.sdk.subject import SubjectFields

# Ids derive from the source record: its record id from where it lives, its event id from that and
# its content, so a resubmitted record keeps its event id (a duplicate) and a changed one gets a new
# one (a revision of the same record).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a8e-3b5d-4d0e-9a57-0c6b8e2f4a11")


def record_id_of(source_system: str, source_record_id: str, scope: str = "") -> str:
    """The record's id across all its revisions (before envelope v3, this was the event id).

    `scope` names the part of the source system within which `source_record_id` is unique, where
    the system's ids are not unique across it: a polled table, whose primary key another table
    repeats. Empty, the id is the one every connector gave before scopes (kept, so the records of a
    running feed keep their ids); set, the three are hashed as one JSON list, so no choice of table
    name or record id can make a scoped id equal an unscoped one or another table's."""
    if not scope:
        return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source_system}/{source_record_id}"))
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, json.dumps([source_system, scope, source_record_id])))


def event_id_of(record_id: str, revision: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{record_id}/{revision}"))


def revision_of(content: dict[str, Any]) -> str:
    """A digest of what the record says: identical content is the identical revision, however often
    or late the source sends it (a poll cursor touched, a file dropped twice)."""
    text = json.dumps(content, sort_keys=True, default=_plain, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:32]


def revised_by_source(revised_at: datetime | None) -> dict[str, datetime]:
    """Where the source stamps its own revisions, the stamp is part of the revision: a record
    changed A -> B -> back to A is three revisions, and the last one stands. Where it does not,
    only the content names the revision (a revert to content already seen is taken for a
    resubmission of it: nothing in the message tells the two apart)."""
    return {"revised_at": revised_at} if revised_at is not None else {}


CLOCK_SKEW = timedelta(minutes=5)


def _no_later_than(revised_at: datetime | None, received: datetime) -> datetime:
    """A record cannot have changed after it was read (beyond a source's clock running fast): a
    revision time in the future would make every later revision look older, and freeze the record."""
    if revised_at is None:
        return received
    return min(revised_at, received + CLOCK_SKEW)


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot digest a {type(value).__name__}")


class MappingError(ValueError):
    """A source record cannot become an event; the message names the field and the problem."""


@dataclass(frozen=True)
class Mapped:
    """What a connector extracts from one source record."""

    source_record_id: str
    occurred_at: datetime
    subject: dict[str, Any]
    payload: dict[str, Any]
    consent: str = "UNKNOWN"
    revised_at: datetime | None = None  # when the source last changed the record, where it says so
    withdrawn: bool = False  # the source retracted it (entered in error)


class Connector(ABC):
    name: ClassVar[str]  # the connector's own name, e.g. "police"; names its checkpoints
    agency: ClassVar[str]  # the Agency enum symbol, e.g. "POLICE"
    feeds: ClassVar[str | None] = None  # which agency topic it feeds, e.g. "police"; default: its name
    event_type: ClassVar[str]
    source_system: ClassVar[str]
    sensitivity: ClassVar[str] = "STANDARD"
    sample: ClassVar[Path]  # the shipped sample the demo and tests run
    subject_fields: ClassVar[SubjectFields]  # where the source keeps the child's details
    config_class: ClassVar[type[ConnectorConfig]]
    ignored_fields: ClassVar[frozenset[str]] = frozenset()  # known source fields the mapping skips
    # The source's revised_at changes only when the record does (a version stamp): it is part of the
    # revision. False where any touch moves it (a database cursor): content alone names the revision.
    stamps_revisions: ClassVar[bool] = True

    # The MASH enquiry's name for the agency (policies/enquiry/agencies.yaml): its information requests
    # arrive on mash.requests.<enquiry_agency>.v1. None: this connector does not answer them.
    enquiry_agency: ClassVar[str | None] = None

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config

    def answerer(self) -> Callable[[dict[str, Any]], Draft | None] | None:
        """How the source answers a MASH information request (connectors/sdk/answering.py), or None
        if the agency answers in the partner portal instead."""
        return None

    @classmethod
    def defaults(cls, state_dir: Path) -> dict[str, Any]:
        """Configuration defaults that run on the embedded stack (e.g. an inbox under state_dir)."""
        return {}

    @abstractmethod
    def open_source(self) -> Source:
        """The source this connector reads, built from its configuration."""

    @abstractmethod
    def install_sample(self) -> None:
        """Put the shipped sample where the configured source will find it (to try it out)."""

    @abstractmethod
    def use_synth(self, synth_dir: Path) -> Connector:
        """This connector set to read the feed `mash synth` wrote for its agency in `synth_dir`,
        with checkpoints of its own there."""

    @abstractmethod
    def sample_records(self, path: Path) -> Iterator[SourceRecord]:
        """The records of a sample file as the source would read them (`mash connector check`)."""

    @abstractmethod
    def map(self, fields: dict[str, Any]) -> Mapped:
        """Map one parsed source record; raise MappingError naming the field on bad input."""

    def synth_folder(self, synth_dir: Path) -> Path:
        return synth_dir / (self.feeds or self.name)

    def _reconfigured(self, synth_dir: Path, **changes: Any) -> Connector:
        offsets = f"sqlite:///{synth_dir / 'offsets.db'}"
        return type(self)(self.config.model_copy(update={"state_url": offsets, **changes}))

    @property
    def topic(self) -> str:
        return inbound(self.feeds or self.name)

    @property
    def principal(self) -> str:
        """The Kafka principal the connector writes as: one per agency feed (`mash.kafka_acls`)."""
        return connector_principal(self.feeds or self.name)

    @property
    def schema(self) -> str:
        return INBOUND_SCHEMAS[self.feeds or self.name]

    def record_scope(self, record: SourceRecord) -> str:
        """Where in the source system `record`'s id is unique (`record_id_of`): "" when the system's
        ids are unique across it, as a file drop's or a push's are; a database poll names the table."""
        return ""

    def to_event(self, mapped: Mapped, received_at: datetime | None = None, scope: str = "") -> dict[str, Any]:
        """Wrap a mapped record in the shared envelope, named by its record id (within `scope`, see
        `record_scope`) and its revision."""
        received = received_at or datetime.now(UTC)
        if len(mapped.source_record_id) > ENVELOPE_CHARS["source_record_id"]:
            raise MappingError(f"the record id is {len(mapped.source_record_id)} characters; the limit is "
                               f"{ENVELOPE_CHARS['source_record_id']}")
        record_id = record_id_of(self.source_system, mapped.source_record_id, scope)
        revision = revision_of({"event_type": self.event_type, "occurred_at": mapped.occurred_at,
                                "subject": mapped.subject, "payload": mapped.payload, "consent": mapped.consent,
                                "sensitivity": self.sensitivity, "withdrawn": mapped.withdrawn,
                                **revised_by_source(mapped.revised_at if self.stamps_revisions else None)})
        return {
            "envelope": {
                "event_id": event_id_of(record_id, revision),
                "event_type": self.event_type,
                "source_agency": self.agency,
                "source_system": self.source_system,
                "source_record_id": mapped.source_record_id,
                "occurred_at": mapped.occurred_at,
                "received_at": received,
                "subject": mapped.subject,
                "sensitivity": self.sensitivity,
                "consent": mapped.consent,
                "record_id": record_id,
                "revision": revision,
                "revised_at": _no_later_than(mapped.revised_at, received),
                "withdrawn": mapped.withdrawn,
            },
            "payload": mapped.payload,
        }
