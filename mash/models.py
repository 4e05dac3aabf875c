"""The hub's SQL tables (SQLAlchemy 2): the person index and the triage store.

The same models serve SQLite (the embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Person(Base):
    """One child as the hub knows them; events from every agency link here."""

    __tablename__ = "persons"

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    merged_into: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # set by a merge
    open_social_care: Mapped[bool] = mapped_column(Boolean, default=False)
    child_protection_plan: Mapped[bool] = mapped_column(Boolean, default=False)
    looked_after: Mapped[bool] = mapped_column(Boolean, default=False)


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


class PersonProfile(Base):
    """Each distinct way agencies have described a person: the name and address history."""

    __tablename__ = "person_profiles"
    __table_args__ = (Index("ix_person_profiles_person", "person_id"),)

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    given: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(64), primary_key=True)
    dob: Mapped[str] = mapped_column(String(10), primary_key=True)  # ISO date, blank when unknown
    sex: Mapped[str] = mapped_column(String(1), primary_key=True)
    postcode: Mapped[str] = mapped_column(String(8), primary_key=True)
    address: Mapped[str] = mapped_column(String(160), primary_key=True, default="", server_default="")
    first_event_id: Mapped[str] = mapped_column(String(36))
    first_seen_ms: Mapped[int] = mapped_column(BigInteger)
    events: Mapped[int] = mapped_column(Integer, default=1)  # how many events described the person so


class PersonBlockKey(Base):
    """Blocking keys: an event is compared only with persons filed under one of its keys.

    Each row carries the profile it was filed for, so one query per batch returns the candidates
    ready to score, not just their ids (the profile table is read only for linked persons).
    """

    __tablename__ = "person_block_keys"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    given: Mapped[str] = mapped_column(String(64), default="")
    family: Mapped[str] = mapped_column(String(64), default="")
    dob: Mapped[str] = mapped_column(String(10), default="")
    sex: Mapped[str] = mapped_column(String(1), default="")
    postcode: Mapped[str] = mapped_column(String(8), default="")
    address: Mapped[str] = mapped_column(String(160), default="", server_default="")


class PersonAddress(Base):
    """Addresses a person has been reported at; children sharing one are a household."""

    __tablename__ = "person_addresses"

    address_key: Mapped[str] = mapped_column(String(160), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)


class PersonEvent(Base):
    """Which events each person has had, for the prior-contact counts triage needs."""

    __tablename__ = "person_events"
    __table_args__ = (Index("ix_person_events_person_time", "person_id", "occurred_ms"),)

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36))
    agency: Mapped[str] = mapped_column(String(16))
    occurred_ms: Mapped[int] = mapped_column(BigInteger)


class LinkDecisionRecord(Base):
    """Every link decision, with its evidence: why this event was put with this person."""

    __tablename__ = "link_decisions"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    method: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(16), nullable=True)
    evidence: Mapped[dict[str, object]] = mapped_column(JSON)
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    record_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # each revision links


class RecordLink(Base):
    """Where an agency record stands in the person index: its latest revision and the person that
    revision is linked to. An older revision arriving late follows it there and changes nothing."""

    __tablename__ = "record_links"

    record_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    revised_ms: Mapped[int] = mapped_column(BigInteger)
    person_id: Mapped[str] = mapped_column(String(36))
    method: Mapped[str] = mapped_column(String(16))


class RecordIdentifier(Base):
    """The identifiers an agency record's latest revision asserts. A person holds an identifier
    by the records asserting it: one that only a corrected record gave is released (re-decided)."""

    __tablename__ = "record_identifiers"
    __table_args__ = (Index("ix_record_identifiers_identifier", "scheme", "value"),)

    record_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)


class PersonMerge(Base):
    """Two person records proved to be one child: the retired one points at the survivor."""

    __tablename__ = "person_merges"

    retired_person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    surviving_person_id: Mapped[str] = mapped_column(String(36), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(200))
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MatchReview(Base):
    """A possible match held for a person to confirm: never linked automatically."""

    __tablename__ = "match_reviews"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)  # the new person the event started
    candidate_person_id: Mapped[str] = mapped_column(String(36), index=True)
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="OPEN", index=True)  # OPEN | CONFIRMED | REJECTED
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answer_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # outbox
    send_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the outbox could never send it


class MatchModelRecord(Base):
    """Each version of the match model's parameters that has made decisions."""

    __tablename__ = "match_models"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    parameters: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertRecord(Base):
    """The latest revision of each alert on the triage queue, with the people working it.

    The hub's columns move only forward with `revision`; the triage app's (claim, decision) are
    written by the app. The queue is the open, undecided alerts ordered by `rag_rank` and `due_at`.
    """

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_queue", "status", "decided_at", "rag_rank", "due_at"),)

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    rag: Mapped[str] = mapped_column(String(8), index=True)
    rag_rank: Mapped[int] = mapped_column(Integer, default=2)  # RED 0, AMBER 1, GREEN 2: the queue's order
    reasons: Mapped[list[str]] = mapped_column(JSON)
    agencies: Mapped[list[str]] = mapped_column(JSON)
    event_ids: Mapped[list[str]] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    score: Mapped[int] = mapped_column(Integer, default=0)
    indicators: Mapped[list[str]] = mapped_column(JSON, default=list)
    scoring_version: Mapped[str] = mapped_column(String(64), default="")
    profile: Mapped[str] = mapped_column(String(120), default="")
    clock_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    at_risk_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A rating a person set (re-rated in the app); hub_rag is the hub's own at that time.
    hub_rag: Mapped[str | None] = mapped_column(String(8), nullable=True)
    rag_set_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rag_set_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    review: Mapped[str | None] = mapped_column(Text, nullable=True)  # the hub asks a person to re-rate
    follows: Mapped[str | None] = mapped_column(String(36), nullable=True)  # the decided alert it carries on
    joined: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)  # per event id: the revision it joined at


class TimelineEventRecord(Base):
    """An event as the sharing stage let it out (`mash.shared.v1`): the alert page's timeline.

    `values` holds only fields shared with some role; `views` says which of them each role may
    see, and the app shows a user nothing beyond their role's view.
    """

    __tablename__ = "timeline_events"
    __table_args__ = (Index("ix_timeline_person_time", "person_id", "occurred_at"),)

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(64))
    source_agency: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sensitivity: Mapped[str] = mapped_column(String(24))
    consent: Mapped[str] = mapped_column(String(24))
    policy_version: Mapped[str] = mapped_column(String(64))
    audit_ref: Mapped[str] = mapped_column(String(80))
    values: Mapped[str] = mapped_column(Text)
    views: Mapped[dict[str, list[str]]] = mapped_column(JSON)  # role -> field names it may see
    # Records live: the timeline keeps every revision of a record; only the latest shows its values.
    record_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    revision: Mapped[str | None] = mapped_column(String(48), nullable=True)
    revised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    superseded_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # role -> field -> when a later revision stopped sharing it (consent withdrawn): shown in its place
    withdrawn_fields: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSON, nullable=True)


class UserRecord(Base):
    """A triage app account. Passwords are stored only as argon2id hashes (older scrypt ones until the
    user's next log-in rehashes them)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(24))  # triage_worker | triage_manager | auditor | agency_user
    sharing_role: Mapped[str | None] = mapped_column(String(48), nullable=True)  # whose view they see
    agency: Mapped[str | None] = mapped_column(String(32), nullable=True)  # an agency user's agency (portal)
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # since the last success, from anywhere
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EnquiryRecord(Base):
    """A MASH enquiry opened from an alert: why, on what lawful basis, the consent decision, and (once
    closed) the threshold decision, sent to `mash.decisions.v1` by the outbox (`published_at`)."""

    __tablename__ = "enquiries"

    enquiry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    rag: Mapped[str] = mapped_column(String(8))
    purpose: Mapped[str] = mapped_column(Text)
    lawful_basis: Mapped[str] = mapped_column(String(48))
    consent: Mapped[str] = mapped_column(String(24))
    consent_reason: Mapped[str] = mapped_column(Text, default="")
    consent_authorised_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # OPEN | CLOSED
    audit_ref: Mapped[str] = mapped_column(String(80))
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    factors: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    rationale: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_audit_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The referring agency (catalogue key) and its event that opened the alert: told the outcome
    # by `feedback_due_at`, on its requests topic (`feedback_published_at`) and in the portal.
    referrer_agency: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    referral_event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    feedback_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    feedback_published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    send_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the outbox could never send it


class EnquirySubjectRecord(Base):
    """Who an enquiry is about: the child, and siblings or household members added to it."""

    __tablename__ = "enquiry_subjects"

    enquiry_id: Mapped[str] = mapped_column(ForeignKey("enquiries.enquiry_id"), primary_key=True)
    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    relation: Mapped[str] = mapped_column(String(24))  # child | household | parent | carer | household_adult | risk
    # an adult the worker named (the index holds children): the details given, shared with every agency asked
    identity: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)


class InformationRequestRecord(Base):
    """One request of an enquiry to one agency: what it asks and shares, its clock, and the agency's
    answer. Sent to `mash.requests.<agency>.v1` by the outbox (`published_at`)."""

    __tablename__ = "information_requests"
    __table_args__ = (Index("ix_information_requests_open", "agency", "answered_at", "due_at"),)

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    enquiry_id: Mapped[str] = mapped_column(ForeignKey("enquiries.enquiry_id"), index=True)
    agency: Mapped[str] = mapped_column(String(32))
    sharing_role: Mapped[str] = mapped_column(String(48))
    prompts: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    shared: Mapped[list[dict[str, object]]] = mapped_column(JSON)  # per subject: relation and identity shared
    rag: Mapped[str] = mapped_column(String(8))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    at_risk_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    audit_ref: Mapped[str] = mapped_column(String(80))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answer: Mapped[str | None] = mapped_column(String(16), nullable=True)  # HELD | NIL | DECLINED
    answers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)  # prompt id -> text
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    declined_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    searched_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    systems_searched: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answer_audit_ref: Mapped[str | None] = mapped_column(String(80), nullable=True)
    # the sharing policy's decision on the answer: role -> the answer's fields it may read
    views: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    policy_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    send_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the outbox could never send it


class LoginThrottleRecord(Base):
    """Failed log-ins counted per (username, address), and per address across usernames (username
    "*"): each key backs off on its own, so failures from an attacker's address never lock the user
    out from theirs (services/triage_app/login_throttle.py)."""

    __tablename__ = "login_throttles"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebSessionRecord(Base):
    """A logged-in browser or API client: the cookie holds a random id, this row only its SHA-256, so a
    copy of the table logs no one in; deleting the row ends the session (log-out, password change)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TriageDecisionRecord(Base):
    """A decision on an alert, with its rationale; sent to `mash.decisions.v1` (outbox: `published_at`)."""

    __tablename__ = "triage_decisions"

    decision_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    person_id: Mapped[str] = mapped_column(String(36))
    outcome: Mapped[str] = mapped_column(String(32))
    rationale: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_role: Mapped[str] = mapped_column(String(24))
    rag_at_decision: Mapped[str] = mapped_column(String(8))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    audit_ref: Mapped[str] = mapped_column(String(80))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    send_error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why the outbox could never send it
    alert_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)  # what the person saw


class AlertActionRecord(Base):
    """Who claimed, released or reassigned an alert, and when: the queue's own history."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TriageStateRecord(Base):
    """Triage's memory of one person: the events it has seen with their indicators, the open alert,
    merges. The system of record for correlation, read and written once per batch; `version`
    rises with every write, so two workers holding the same person during a rebalance cannot both
    write (the second finds the version moved, and redoes its batch on the new state)."""

    __tablename__ = "triage_states"

    person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text)  # JSON of services.triage.correlation.PersonState
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
    kind: Mapped[str] = mapped_column(String(16), default="NEW", server_default="NEW")  # NEW | REVISION | WITHDRAWAL
    record_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class AuditRecordRow(Base):
    """One event's sealed sharing entry; append-only (the database refuses updates and deletes).

    `body` is the canonical JSON the hash is over; it binds the event's decisions by their digest
    (`decisions_digest`, a row of `audit_decision_sets`). The other columns index it.
    """

    __tablename__ = "audit_records"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_audit_chain_seq"),)

    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                          autoincrement=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(36), index=True)
    decision_key: Mapped[str] = mapped_column(String(160), unique=True)  # event/decider: one entry each
    decisions_digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    record_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)  # its revisions' entries
    signature: Mapped[str | None] = mapped_column(String(96), nullable=True)  # keyed, by its writer: see audit_keys


class AuditSigningBeganRow(Base):
    """Each chain's last sequence number before entries were signed (migration 0006): those unsigned
    entries are the trail as it was; any other unsigned one was not written by a key holder (a chain's
    numbers are unique, so none can be inserted below). Read-only at runtime."""

    __tablename__ = "audit_signing_began"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    unsigned_through: Mapped[int] = mapped_column(BigInteger)


class AlertBeforeSealingRow(Base):
    """An alert at the revision it stood at when sealing began (migration 0008): the one revision of
    it with no seal that is not a forgery. Read-only at runtime."""

    __tablename__ = "alerts_before_sealing"

    alert_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)


class MergeBeforeSealingRow(Base):
    """A merge applied before triage sealed merges (migration 0008): whose timeline a retired child's
    events may be on. Read-only at runtime (`person_merges` is the processes' to write)."""

    __tablename__ = "merges_before_sealing"

    retired_person_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    surviving_person_id: Mapped[str] = mapped_column(String(36))


class SealingBeganRow(Base):
    """Where sealing began in a table without revisions (`alert_actions`: its last id then).
    Read-only at runtime."""

    __tablename__ = "sealing_began"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    through: Mapped[int] = mapped_column(BigInteger)


class AuditTopicCursorRow(Base):
    """How far a chain written in SQL (the triage app's) has been published to `mash.audit.v1`, where
    its signed records anchor it; the outbox moves it on once the broker acknowledges."""

    __tablename__ = "audit_topic_cursor"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class AuditDecisionSetRow(Base):
    """What was decided for every role, stored once per distinct set of decisions (most events of a
    kind are decided alike) and named by the SHA-256 of its canonical JSON; append-only."""

    __tablename__ = "audit_decision_sets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


_APPEND_ONLY = "audit records are append-only"
for _table in ("audit_records", "audit_decision_sets"):
    for _verb in ("UPDATE", "DELETE"):
        event.listen(Base.metadata.tables[_table], "after_create", DDL(  # type: ignore[no-untyped-call]
            f"CREATE TRIGGER {_table}_no_{_verb.lower()} BEFORE {_verb} ON {_table} "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END").execute_if(dialect="sqlite"))
    event.listen(Base.metadata.tables[_table], "after_create", DDL(  # type: ignore[no-untyped-call]
        "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$").execute_if(dialect="postgresql"))
    event.listen(Base.metadata.tables[_table], "after_create", DDL(  # type: ignore[no-untyped-call]
        f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table} "
        "FOR EACH ROW EXECUTE FUNCTION audit_append_only()").execute_if(dialect="postgresql"))
