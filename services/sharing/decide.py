"""Who sees what: the policy applied to one event for one recipient role. Pure.

Default withhold: a field reaches a role only if a matching rule shares it and no matching rule
withholds it. Refused consent is matched only by rules that name an override reason. Every field
of a special category event needs a sharing rule that names an Article 9 condition; rules that do
not are recorded as having shared nothing. Withheld means absent from the view, never blanked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.sharing.fields import Scalar
from services.sharing.policy import Policy, Rule, expand
from services.sharing.vocabulary import ROLES

SHARE, SHARE_FIELDS, WITHHOLD = "SHARE", "SHARE_FIELDS", "WITHHOLD"
NO_RULE = "no rule shares this event with this role: withheld by default"


@dataclass(frozen=True)
class EventFacts:
    """What rules match on, beside the fields themselves."""

    event_type: str
    agency: str
    sensitivity: str
    consent: str
    context: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleDecision:
    role: str
    outcome: str  # SHARE | SHARE_FIELDS | WITHHOLD
    shared: tuple[str, ...]
    withheld: tuple[str, ...]
    rule_ids: tuple[str, ...]  # every rule that matched, in policy order
    lawful_basis: tuple[str, ...]  # of the rules that decided what was shared or withheld
    purpose: str
    necessity: str
    override_reason: str | None
    notes: tuple[str, ...] = ()


def decide_all(policy: Policy, facts: EventFacts, fields: Mapping[str, Scalar]) -> list[RoleDecision]:
    present = getattr(fields, "names", None) or frozenset(fields)
    return [decide(policy, facts, fields, role, present) for role in ROLES]


def decide(policy: Policy, facts: EventFacts, fields: Mapping[str, Scalar], role: str,
           present: frozenset[str] | None = None) -> RoleDecision:
    present = frozenset(fields) if present is None else present
    matched = [rule for rule in policy.by_role.get(role, ()) if _matches(rule, facts, fields)]
    special = facts.sensitivity == "SPECIAL_CATEGORY"
    allowed: set[str] = set()
    deciding: list[Rule] = []
    notes: list[str] = []
    for rule in (r for r in matched if r.decision != "withhold"):
        offered = present if rule.decision == "share" else expand(rule.fields, present)
        if special and not rule.article_9:
            notes.append(f"rule {rule.id} shared nothing: the event is special category and the rule names "
                         "no Article 9 condition")
            continue
        if offered:
            allowed |= offered
            deciding.append(rule)
    for rule in (r for r in matched if r.decision == "withhold"):
        removed = present if not rule.fields else expand(rule.fields, present)
        if removed & allowed:
            allowed -= removed
            deciding.append(rule)
    shared = tuple(sorted(allowed))
    withheld = tuple(sorted(present - allowed))
    outcome = WITHHOLD if not shared else SHARE if not withheld else SHARE_FIELDS
    sharing_rules = [r for r in deciding if r.decision != "withhold"]
    override = None
    if facts.consent == "REFUSED" and shared:
        override = "; ".join(dict.fromkeys(r.override_reason for r in sharing_rules if r.override_reason))
    return RoleDecision(
        role=role, outcome=outcome, shared=shared, withheld=withheld,
        rule_ids=tuple(r.id for r in matched),
        lawful_basis=tuple(dict.fromkeys(b for r in deciding for b in r.lawful_basis)),
        purpose="; ".join(dict.fromkeys(r.purpose for r in sharing_rules)) or NO_RULE,
        necessity="; ".join(dict.fromkeys(r.necessity for r in deciding)) or NO_RULE,
        override_reason=override or None, notes=tuple(notes))


def decision_inputs(policy: Policy, facts: EventFacts, fields: Mapping[str, Scalar]) -> tuple[object, ...]:
    """Everything `decide_all` depends on: events equal in these are decided alike (so may share a result)."""
    return (policy.version, facts.event_type, facts.agency, facts.sensitivity, facts.consent,
            tuple(sorted(facts.context.items())), tuple(_text(fields.get(name)) for name in policy.where_fields),
            getattr(fields, "names", None) or frozenset(fields))


def view(fields: Mapping[str, Scalar], decision: RoleDecision) -> dict[str, Scalar]:
    """The role's view: the shared fields and nothing else."""
    return {name: fields[name] for name in decision.shared}


def _matches(rule: Rule, facts: EventFacts, fields: Mapping[str, Scalar]) -> bool:
    when = rule.when
    return ((not when.event_types or facts.event_type in when.event_types)
            and (not when.agencies or facts.agency in when.agencies)
            and (not when.sensitivity or facts.sensitivity in when.sensitivity)
            and facts.consent in when.consent
            and (not when.context_any or any(facts.context.get(flag) for flag in when.context_any))
            and all(_text(fields.get(name)) in values for name, values in when.where.items()))


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
