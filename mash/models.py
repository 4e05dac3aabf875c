"""The hub's SQL tables (SQLAlchemy 2): the person index and the triage store.

The same models serve SQLite (the embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Person(Base):
    """One child as the hub knows them; events from every agency link here."""

    __tablename__ = "persons"

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PersonIdentifier(Base):
    """A strong identifier (NHS number, UPN) or an agency's own id, owned by one person.

    The primary key makes "one person per identifier" a database guarantee, so two workers
    racing on the same new child cannot create two persons.
    """

    __tablename__ = "person_identifiers"

    scheme: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.person_id"), index=True)
    first_seen_event_id: Mapped[str] = mapped_column(String(36))


class AlertRecord(Base):
    """The latest revision of each alert on the triage queue."""

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    rag: Mapped[str] = mapped_column(String(8), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    agencies: Mapped[list[str]] = mapped_column(JSON)
    event_ids: Mapped[list[str]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventOutcomeRecord(Base):
    """The one recorded outcome of each inbound event (conservation: none lost, none twice)."""

    __tablename__ = "event_outcomes"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    source_agency: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(24), index=True)
    alert_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
