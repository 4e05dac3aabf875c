"""Make the broker's ACLs for the bus's principals exactly the declaration (`mash.kafka_acls`).

Idempotent: what is declared and missing is created; every other ALLOW that widens a declared
principal within this deployment is deleted, so the broker never keeps a right the declaration took
away or never gave: a grant narrowed to one host (the declared one, for any host, replaces it), a
`User:*` wildcard, a cluster-wide right. Other deployments sharing the cluster (another topic prefix
and app id) keep theirs, and principals the bus does not declare are left alone. Runs as the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mash.kafka_acls import SERVICE_PRINCIPALS, Grant, grants
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.settings import Settings
from mash.topics import CATALOGUE, topic_name

WILDCARD = "*"


@dataclass
class AclChanges:
    created: list[Grant] = field(default_factory=list)
    deleted: list[Grant] = field(default_factory=list)


def sync_acls(bootstrap: str, settings: Settings, dry_run: bool = False) -> AclChanges:
    """Bring the broker's ACLs for the declared principals to the declaration; what changed."""
    from kafka import KafkaAdminClient

    wanted = set(grants(settings))
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-acls",
                             **kafka_python_options(settings, OPERATOR))
    try:
        held = [(grant, acl) for grant, acl in _held(admin)
                if grant.principal in (*SERVICE_PRINCIPALS, WILDCARD) and touches(grant, settings)]
        have = {grant for grant, _ in held}
        extra = sorted(((grant, acl) for grant, acl in held if grant not in wanted), key=lambda pair: pair[0])
        changes = AclChanges(sorted(wanted - have), [grant for grant, _ in extra])
        if dry_run:
            return changes
        if changes.created:
            result = admin.create_acls([acl_of(grant) for grant in changes.created])
            if result["failed"]:
                raise RuntimeError(f"the broker refused {len(result['failed'])} ACL(s): {result['failed'][0]}")
        if extra:
            admin.delete_acls([acl for _, acl in extra])
        return changes
    finally:
        admin.close()


def revoke_acls(bootstrap: str, settings: Settings) -> None:
    """Delete this deployment's declared grants (it is retired: its topic prefix and groups are no
    longer used). Other deployments sharing the cluster keep theirs. Runs as the operator."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-acls",
                             **kafka_python_options(settings, OPERATOR))
    try:
        admin.delete_acls([acl_of(grant) for grant in grants(settings)])
    finally:
        admin.close()


def touches(grant: Grant, settings: Settings) -> bool:
    """Whether `grant` can reach this deployment's topics or groups (or is a kind of right no service
    of the bus is ever given, which it can only widen): it names one of them, falls under one of its
    declared prefixes, or is a prefix that covers one. Another deployment's names never do, even one
    whose topic prefix or app id begins with this one's."""
    if grant.resource not in ("TOPIC", "GROUP"):
        return True
    if grant.name == WILDCARD:
        return True
    declared = [g for g in grants(settings) if g.resource == grant.resource]
    names = {g.name for g in declared if g.pattern == "LITERAL"}
    if grant.resource == "TOPIC":
        names |= {topic_name(spec.name, settings) for spec in CATALOGUE}
    prefixes = [g.name for g in declared if g.pattern == "PREFIXED"]
    if grant.pattern == "PREFIXED":
        return any(name.startswith(grant.name) for name in (*names, *prefixes))
    return grant.name in names or any(grant.name.startswith(prefix) for prefix in prefixes)


def _held(admin: Any) -> list[tuple[Grant, Any]]:
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    everything = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))
    acls, _error = admin.describe_acls(everything)
    held = []
    for acl in acls:
        if acl.permission_type != ACLPermissionType.ALLOW or not acl.principal.startswith("User:"):
            continue  # a DENY only narrows
        pattern = acl.resource_pattern
        held.append((Grant(acl.principal.removeprefix("User:"), pattern.resource_type.name, pattern.resource_name,
                           acl.operation.name, pattern.pattern_type.name, acl.host), acl))
    return held


def acl_of(grant: Grant) -> Any:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return ACL(principal=f"User:{grant.principal}", host=grant.host, operation=ACLOperation[grant.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[grant.resource], grant.name,
                                                ACLResourcePatternType[grant.pattern]))
