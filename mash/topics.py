"""The topic catalogue: every topic the bus uses, declared once, and its idempotent provisioning."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from mash.kafka_security import OPERATOR, kafka_python_options
from mash.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 60 * 60 * 1000
AGENCIES = ("police", "health", "education", "social_care")


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the catalogue declares it; `name` is before any `MASH_TOPIC_PREFIX`."""

    name: str
    schema: str
    key: str
    retention_ms: int
    partitions: int | None = None  # None: the settings' topic_partitions
    cleanup_policy: str = "delete"
    doc: str = ""


INBOUND_SCHEMAS = {
    "police": "uk.mash.police.PublicProtectionNotification",
    "health": "uk.mash.health.EmergencyAttendance",
    "education": "uk.mash.education.EducationConcern",
    "social_care": "uk.mash.social_care.SocialCareEvent",
}


def inbound(agency: str) -> str:
    return f"mash.inbound.{agency}.v1"


ENRICHED = "mash.enriched.v1"
SHARED = "mash.shared.v1"
AUDIT = "mash.audit.v1"
ALERTS = "mash.alerts.v1"
OUTCOMES = "mash.outcomes.v1"
DECISIONS = "mash.decisions.v1"
MATCH_ANSWERS = "mash.match_answers.v1"
DEADLETTER = "mash.deadletter.v1"
RETURNS = "mash.returns.v1"
# The agencies of the shipped enquiry catalogue (policies/enquiry/agencies.yaml); a partnership's own
# further agencies have their request topics provisioned by the triage app (`request_topics`).
ENQUIRY_AGENCIES = ("police", "health", "education", "childrens_social_care", "adults_social_care")


def requests_topic(agency: str) -> str:
    return f"mash.requests.{agency}.v1"


def request_topic_spec(agency: str) -> TopicSpec:
    return TopicSpec(requests_topic(agency), "uk.mash.hub.InformationRequest", "request_id (enquiry_id for feedback)",
                     retention_ms=365 * DAY_MS,
                     doc=f"The MASH's information requests to {agency}, and the outcomes of its referrals.")

CATALOGUE: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(inbound(agency), INBOUND_SCHEMAS[agency], "the agency's subject id",
                  retention_ms=30 * DAY_MS, doc=f"Events from {agency} connectors.")
        for agency in AGENCIES
    ),
    TopicSpec(ENRICHED, "uk.mash.hub.EnrichedEvent", "person_id", retention_ms=30 * DAY_MS,
              doc="Inbound events linked to one person."),
    TopicSpec(SHARED, "uk.mash.hub.SharedEvent", "person_id", retention_ms=30 * DAY_MS,
              doc="Enriched events as the sharing policy lets each role see them; all that travels downstream."),
    TopicSpec(AUDIT, "uk.mash.hub.AuditRecord", "chain", retention_ms=-1,
              doc="Every sharing decision, hash-chained; kept forever (the SQL table is the system of record)."),
    TopicSpec(ALERTS, "uk.mash.hub.Alert", "person_id", retention_ms=365 * DAY_MS,
              doc="Alert revisions for the triage queue; the latest per person is current."),
    TopicSpec(OUTCOMES, "uk.mash.hub.EventOutcome", "event_id", retention_ms=365 * DAY_MS,
              doc="One recorded outcome per inbound event."),
    TopicSpec(DECISIONS, "uk.mash.hub.TriageDecision", "person_id", retention_ms=-1,
              doc="Decisions recorded in the triage app, with their rationale; the hub closes the alert on each."),
    TopicSpec(MATCH_ANSWERS, "uk.mash.hub.MatchAnswer", "review event_id", retention_ms=-1,
              doc="Answers to possible matches from the triage app; enrichment merges on a confirmation."),
    TopicSpec(DEADLETTER, "uk.mash.hub.DeadLetter", "the original key", retention_ms=90 * DAY_MS,
              doc="Everything that could not be processed, with its reason."),
    *(request_topic_spec(agency) for agency in ENQUIRY_AGENCIES),
    TopicSpec(RETURNS, "uk.mash.hub.InformationReturn", "request_id", retention_ms=365 * DAY_MS,
              doc="Partner agencies' answers to information requests, from their connectors."),
)


# What each hub stage consumes. Each stage is its own consumer group (`stage_group`), so a stage
# scales and rebalances on its own and its lag says how far that stage is behind.
HUB_STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "enrichment": (*(inbound(a) for a in AGENCIES), MATCH_ANSWERS),
    "sharing": (ENRICHED,),
    "triage": (SHARED, DECISIONS),
}


def stage_group(stage: str, settings: Settings) -> str:
    """The consumer group of one hub stage in this deployment."""
    return f"{settings.app_id}.{stage}"


def topic_name(name: str, settings: Settings) -> str:
    return f"{settings.topic_prefix}{name}"


PROVISION_TIMEOUT_S = 60.0


def provision(bootstrap: str, settings: Settings, timeout_s: float = PROVISION_TIMEOUT_S,
              specs: tuple[TopicSpec, ...] = CATALOGUE, service: str = OPERATOR) -> list[str]:
    """Create every catalogue topic (or every one of `specs`) that does not exist yet; the ones created.

    A cluster that has just started can name as controller a broker the client has not yet seen
    (UnknownBrokerIdError), or move its controller mid-request: such errors are retried with a
    fresh client until `timeout_s`, since every step is idempotent."""
    from kafka.errors import KafkaError, UnknownBrokerIdError

    deadline = time.monotonic() + timeout_s
    created: list[str] = []
    while True:
        try:
            created += _create_missing(bootstrap, settings, specs, service)
            return created
        except KafkaError as exc:
            settling = exc.retriable or isinstance(exc, UnknownBrokerIdError)
            if not settling or time.monotonic() > deadline:
                raise
            log.info("provisioning topics: the cluster is not settled yet (%s); trying again", exc)
            time.sleep(0.5)


def _create_missing(bootstrap: str, settings: Settings, specs: tuple[TopicSpec, ...], service: str) -> list[str]:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-provision",
                             **kafka_python_options(settings, service))
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                name=topic_name(spec.name, settings),
                num_partitions=spec.partitions or settings.topic_partitions,
                replication_factor=settings.replication_factor,
                topic_configs={"retention.ms": str(spec.retention_ms),
                               "cleanup.policy": spec.cleanup_policy},
            )
            for spec in specs
            if topic_name(spec.name, settings) not in existing
        ]
        created = []
        for topic in wanted:  # one at a time: a concurrent creator must not fail the batch
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
        if created:  # accepted is not ready: wait for a leader on every partition
            admin.wait_for_topics(created, timeout_ms=30_000)
        return created
    finally:
        admin.close()
