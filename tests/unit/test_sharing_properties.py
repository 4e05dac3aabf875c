"""Properties of sharing decisions over generated policies, events and roles (hypothesis).

Policies are generated as YAML text and go through the real loader, so every rule the
properties see is one the loader accepted.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sharing.decide import EventFacts, RoleDecision, decide, view
from services.sharing.fields import EVENT_TYPES, Scalar, catalogue
from services.sharing.policy import Policy, PolicyError, expand, parse_policy
from services.sharing.vocabulary import (
    CONSENT_STATES,
    CONTEXT_FLAGS,
    HEALTH_ROLES,
    LAWFUL_BASES,
    ROLES,
    SENSITIVITIES,
)

FIELDS = sorted(frozenset().union(*catalogue().values()))
GROUPS = sorted({f.split(".")[0] + ".*" for f in FIELDS})
ART_9 = [b for b, basis in LAWFUL_BASES.items() if basis.article_9]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=40))


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    decision = draw(st.sampled_from(["share", "share_fields", "withhold"]))
    consent = draw(st.lists(st.sampled_from(CONSENT_STATES), min_size=1, unique=True))
    rule: dict[str, Any] = {
        "id": f"rule-{index}", "description": "generated",
        "when": {"roles": draw(st.lists(st.sampled_from(list(ROLES)), min_size=1, unique=True)),
                 "consent": consent},
        "decision": decision,
        "lawful_basis": draw(st.lists(st.sampled_from(list(LAWFUL_BASES)), min_size=1, max_size=3, unique=True)),
        "purpose": "p", "necessity": draw(st.text(min_size=1, max_size=20).filter(str.strip)),
    }
    if draw(st.booleans()):
        rule["when"]["event_types"] = draw(st.lists(st.sampled_from(list(EVENT_TYPES)), min_size=1, unique=True))
    if draw(st.booleans()):
        rule["when"]["sensitivity"] = draw(st.lists(st.sampled_from(SENSITIVITIES), min_size=1, unique=True))
    if draw(st.booleans()):
        rule["when"]["context_any"] = draw(st.lists(st.sampled_from(CONTEXT_FLAGS), min_size=1, unique=True))
    if decision == "share_fields" or (decision == "withhold" and draw(st.booleans())):
        rule["fields"] = draw(st.lists(st.sampled_from(FIELDS + GROUPS), min_size=1, max_size=12, unique=True))
    if "REFUSED" in consent and decision != "withhold":
        rule["override_reason"] = "risk of significant harm"
    return rule


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    count = draw(st.integers(1, 8))
    text = yaml.safe_dump({"policy": "generated", "rules": [draw(rules(i)) for i in range(count)]})
    return parse_policy(text.encode(), "generated.yaml")


@st.composite
def events(draw: st.DrawFn) -> tuple[EventFacts, dict[str, Scalar]]:
    event_type = draw(st.sampled_from(list(EVENT_TYPES)))
    names = sorted(catalogue()[event_type])
    fields = {name: draw(scalars) for name in names}
    context = {flag: draw(st.booleans()) for flag in CONTEXT_FLAGS}
    facts = EventFacts(event_type, EVENT_TYPES[event_type][0], draw(st.sampled_from(SENSITIVITIES)),
                       draw(st.sampled_from(CONSENT_STATES)), context)
    return facts, fields


roles = st.sampled_from(list(ROLES))
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


Event = tuple[EventFacts, dict[str, Scalar]]


def decided(policy: Policy, event: Event, role: str) -> tuple[EventFacts, dict[str, Scalar], RoleDecision]:
    facts, fields = event
    return facts, fields, decide(policy, facts, fields, role)


def rules_for(policy: Policy, role: str) -> list[Any]:
    return [r for r in policy.rules if role in r.when.roles]


@PROPERTY
@given(policies(), events(), roles)
def test_no_field_outside_the_roles_allowed_set_appears_in_its_view(
        policy: Policy, event: Event, role: str) -> None:
    _, fields, decision = decided(policy, event, role)
    shown = view(fields, decision)
    # allowed: named by some sharing rule for this role; and not named by a withhold rule that applied
    named = set()
    for rule in rules_for(policy, role):
        if rule.decision == "share":
            named |= set(fields)
        elif rule.decision == "share_fields":
            named |= expand(rule.fields, set(fields))
    assert set(shown) <= named
    for rule in rules_for(policy, role):
        if rule.decision == "withhold" and rule.id in decision.rule_ids:
            removed = set(fields) if not rule.fields else expand(rule.fields, set(fields))
            assert not set(shown) & removed, f"{rule.id} withholds what the view shows"


@PROPERTY
@given(policies(), events(), roles)
def test_withheld_means_absent_not_blanked(policy: Policy, event: Event, role: str) -> None:
    _, fields, decision = decided(policy, event, role)
    shown = view(fields, decision)
    assert set(shown) == set(decision.shared)
    assert not set(shown) & set(decision.withheld)
    assert set(decision.shared) | set(decision.withheld) == set(fields)
    assert all(shown[name] is fields[name] for name in shown)  # the values themselves, never blanked


@PROPERTY
@given(policies(), events(), roles)
def test_special_category_never_reaches_a_non_health_role_without_an_article_9_rule_and_reason(
        policy: Policy, event: Event, role: str) -> None:
    facts, _, decision = decided(policy, event, role)
    if facts.sensitivity != "SPECIAL_CATEGORY" or role in HEALTH_ROLES or not decision.shared:
        return
    deciding = [r for r in policy.rules if r.id in decision.rule_ids and r.decision != "withhold"]
    assert any(r.article_9 and r.necessity.strip() for r in deciding)
    assert set(decision.lawful_basis) & set(ART_9)


@PROPERTY
@given(policies(), events(), roles)
def test_refused_consent_is_shared_only_with_an_override_reason_recorded(
        policy: Policy, event: Event, role: str) -> None:
    facts, _, decision = decided(policy, event, role)
    if facts.consent == "REFUSED" and decision.shared:
        assert decision.override_reason


@PROPERTY
@given(st.data())
def test_a_rule_with_no_lawful_basis_is_rejected_at_load(data: st.DataObject) -> None:
    rule = data.draw(rules(0))
    missing = data.draw(st.sampled_from(["absent", "empty", "null"]))
    if missing == "absent":
        del rule["lawful_basis"]
    else:
        rule["lawful_basis"] = [] if missing == "empty" else None
    text = yaml.safe_dump({"policy": "generated", "rules": [rule]})
    try:
        parse_policy(text.encode(), "generated.yaml")
    except PolicyError as exc:
        assert "lawful_basis" in str(exc)
    else:
        raise AssertionError("a rule without a lawful basis was accepted")
