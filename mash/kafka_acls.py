"""Who may do what on the bus: one Kafka principal per service and the ACLs it needs, declared once
beside the topic catalogue (`mash.topics`), printed and applied by `mash kafka acls`.

Least privilege, by what each service does:
- a connector writes its agency's inbound topic and the dead-letter topic; one that answers the
  MASH's information requests from its source also reads its agency's request topic (its own
  consumer group) and writes returns. It reads no other agency's events.
- the hub reads the inbound topics and the triage app's answers, and writes the hub's topics;
  each stage commits in its own consumer group.
- the triage app writes decisions, match answers, its own audit chain and information requests,
  and reads the returns it shows. It reads no inbound or hub topic: the triage stage writes the
  queue's database itself.
- operators' tools (provisioning, ACLs, lag, audit verification) act as the broker's operator,
  a super user: someone has to be able to grant.

Everything not granted is refused: the broker runs with `allow.everyone.if.no.acl.found=false`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mash.kafka_security import BROKER, HUB, OPERATOR, TRIAGE_APP, connector
from mash.settings import Settings
from mash.topics import (
    AGENCIES,
    ALERTS,
    AUDIT,
    DEADLETTER,
    DECISIONS,
    ENRICHED,
    HUB_STAGE_INPUTS,
    MATCH_ANSWERS,
    OUTCOMES,
    RETURNS,
    SHARED,
    inbound,
    requests_topic,
    stage_group,
    topic_name,
)

# Connectors that answer the MASH's information requests from their source, by the enquiry agency
# they answer for (a connector's `enquiry_agency`; a test keeps the two in step).
ANSWERING_CONNECTORS = {"education": "education"}
REQUESTS_PREFIX = "mash.requests."  # a partnership's further agencies get request topics at run time


SERVICE_PRINCIPALS: tuple[str, ...] = (HUB, TRIAGE_APP, *(connector(a) for a in AGENCIES))
SUPER_USERS: tuple[str, ...] = (BROKER, OPERATOR)


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: `principal` may do `operation` on the resource; names are the deployment's own
    (topic prefix and app id applied). `pattern` PREFIXED matches every name starting with `name`."""

    principal: str
    resource: str  # TOPIC or GROUP
    name: str
    operation: str  # READ, WRITE, CREATE
    pattern: str = "LITERAL"
    host: str = "*"  # the declaration grants from any host; a broker's ACL may name one

    def line(self) -> str:
        wildcard = "*" if self.pattern == "PREFIXED" else ""
        host = f"  (from {self.host} only)" if self.host != "*" else ""
        return f"User:{self.principal:26} {self.operation:7} {self.resource.lower():5} {self.name}{wildcard}{host}"


def grants(settings: Settings) -> list[Grant]:
    """Every ACL of the deployment named by `settings`, sorted by principal."""
    def topics(principal: str, operation: str, *names: str) -> list[Grant]:
        return [Grant(principal, "TOPIC", topic_name(name, settings), operation) for name in names]

    out: list[Grant] = []
    for agency in AGENCIES:
        who = connector(agency)
        out += topics(who, "WRITE", inbound(agency), DEADLETTER)
        answers_for = ANSWERING_CONNECTORS.get(agency)
        if answers_for:
            out += topics(who, "READ", requests_topic(answers_for))
            out += topics(who, "WRITE", RETURNS)
            out.append(Grant(who, "GROUP", f"{settings.app_id}.answer.{answers_for}", "READ"))
    hub_reads = sorted({topic for inputs in HUB_STAGE_INPUTS.values() for topic in inputs})
    out += topics(HUB, "READ", *hub_reads)
    out += topics(HUB, "WRITE", ENRICHED, SHARED, AUDIT, ALERTS, OUTCOMES, DEADLETTER)
    out += [Grant(HUB, "GROUP", stage_group(stage, settings), "READ") for stage in HUB_STAGE_INPUTS]
    out += topics(TRIAGE_APP, "WRITE", DECISIONS, MATCH_ANSWERS, AUDIT, DEADLETTER)
    out += topics(TRIAGE_APP, "READ", RETURNS)
    out.append(Grant(TRIAGE_APP, "GROUP", f"{settings.app_id}.triage-app.returns", "READ"))
    for operation in ("WRITE", "CREATE"):  # the app provisions a further agency's request topic
        out.append(Grant(TRIAGE_APP, "TOPIC", topic_name(REQUESTS_PREFIX, settings), operation, "PREFIXED"))
    return sorted(out)


def render(settings: Settings) -> str:
    """The declaration as an operator reads it: one line per ACL, grouped by principal."""
    lines = [f"# super users (broker config super.users): {', '.join('User:' + u for u in SUPER_USERS)}",
             "# everything else is refused (allow.everyone.if.no.acl.found=false)"]
    principal = None
    for grant in grants(settings):
        if grant.principal != principal:
            principal = grant.principal
            lines.append("")
        lines.append(grant.line())
    return "\n".join(lines)
