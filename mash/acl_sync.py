"""Make the broker's ACLs for the bus's principals exactly the declaration (`mash.kafka_acls`).

Idempotent: what is declared and missing is created; what a declared principal holds beyond the
declaration (a narrowed grant, a principal's old topic) is deleted, so the broker never keeps a
right the declaration took away. ACLs of principals the bus does not declare are left alone: they
belong to someone else on a shared cluster. Runs as the operator (`kafka_python_options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mash.kafka_acls import SERVICE_PRINCIPALS, Grant, grants
from mash.kafka_security import OPERATOR, kafka_python_options
from mash.settings import Settings


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
        held = {grant: acl for grant, acl in _held(admin).items() if grant.principal in SERVICE_PRINCIPALS}
        changes = AclChanges(sorted(wanted - held.keys()), sorted(held.keys() - wanted))
        if dry_run:
            return changes
        if changes.created:
            result = admin.create_acls([_acl(grant) for grant in changes.created])
            if result["failed"]:
                raise RuntimeError(f"the broker refused {len(result['failed'])} ACL(s): {result['failed'][0]}")
        if changes.deleted:
            admin.delete_acls([held[grant] for grant in changes.deleted])
        return changes
    finally:
        admin.close()


def _held(admin: object) -> dict[Grant, object]:
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
    acls, _error = admin.describe_acls(everything)  # type: ignore[attr-defined]
    held = {}
    for acl in acls:
        if acl.permission_type != ACLPermissionType.ALLOW or not acl.principal.startswith("User:"):
            continue
        pattern = acl.resource_pattern
        held[Grant(acl.principal.removeprefix("User:"), pattern.resource_type.name, pattern.resource_name,
                   acl.operation.name, pattern.pattern_type.name)] = acl
    return held


def _acl(grant: Grant) -> object:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return ACL(principal=f"User:{grant.principal}", host="*", operation=ACLOperation[grant.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[grant.resource], grant.name,
                                                ACLResourcePatternType[grant.pattern]))
