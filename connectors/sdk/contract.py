"""The contract a connector implements: declare what it is and its configuration, name its
source, and map one source record to an event.

Everything else (reading the source, building the envelope, Avro encoding, the Kafka key,
producing, confirmation, checkpoints, retries, the dead-letter path) belongs to the SDK, so a
connector stays a page long.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from connectors.sdk.config import ConnectorConfig
from mash.topics import INBOUND_SCHEMAS, inbound

if TYPE_CHECKING:
    from collections.abc import Iterator

    from connectors.sdk.sources.base import Source, SourceRecord
    from connectors.sdk.subject import SubjectFields

# Event ids derive from the source record, so a resubmitted record keeps its id and the hub's
# idempotency on event_id recognises it.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a8e-3b5d-4d0e-9a57-0c6b8e2f4a11")


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

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config

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
    def schema(self) -> str:
        return INBOUND_SCHEMAS[self.feeds or self.name]

    def to_event(self, mapped: Mapped, received_at: datetime | None = None) -> dict[str, Any]:
        """Wrap a mapped record in the shared envelope."""
        event_id = uuid.uuid5(EVENT_ID_NAMESPACE, f"{self.source_system}/{mapped.source_record_id}")
        return {
            "envelope": {
                "event_id": str(event_id),
                "event_type": self.event_type,
                "source_agency": self.agency,
                "source_system": self.source_system,
                "source_record_id": mapped.source_record_id,
                "occurred_at": mapped.occurred_at,
                "received_at": received_at or datetime.now(UTC),
                "subject": mapped.subject,
                "sensitivity": self.sensitivity,
                "consent": mapped.consent,
            },
            "payload": mapped.payload,
        }
