"""Properties of sharing decisions over generated policies, events and roles (hypothesis).

Policies are generated as YAML text and go through the real loader, so every rule the
properties see is one the loader accepted. The oracle is this file's own reading of the rule
language, applied to the rules as the test wrote them (`allowed`): every rule's conditions are
evaluated from the event's facts and fields here, never taken from the engine's list of matched
rules. Rules are drawn around the event (a condition names the event's own value half the time),
so they often apply, and each property counts the examples in which it had something to check
and asserts that is a good share of them. The last tests break the engine's rule matching two
ways and show that the properties fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import services.sharing.decide as engine
from services.sharing.decide import EventFacts, RoleDecision, decide, view
from services.sharing.fields import EVENT_TYPES, Scalar, catalogue
from services.sharing.policy import Policy, PolicyError, Rule, parse_policy
from services.sharing.vocabulary import (
    AGENCIES,
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
NOT_REFUSED = [c for c in CONSENT_STATES if c != "REFUSED"]  # what a rule that names no consent matches
WORDS = ["DOMESTIC_ABUSE", "HIGH", "ASSAULT", "true", "false", "0", "1"]  # texts a `where` compares with
EXAMPLES = 300

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(WORDS),
                    st.floats(allow_nan=False), st.text(max_size=20))


def as_text(value: Scalar) -> str:
    """How a `where` condition reads a field: booleans as true/false, a missing or empty value as ""."""
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Case:
    rules: list[dict[str, Any]]  # as the test wrote them: what the oracle reads
    policy: Policy  # the same rules through the real loader: what the engine reads
    facts: EventFacts
    fields: dict[str, Scalar]
    role: str

    @property
    def decision(self) -> RoleDecision:
        return decide(self.policy, self.facts, self.fields, self.role)

    @property
    def special(self) -> bool:
        return self.facts.sensitivity == "SPECIAL_CATEGORY"


# -- the strategies: events with missing fields, rules drawn around them ------------------------------

@st.composite
def events(draw: st.DrawFn) -> tuple[EventFacts, dict[str, Scalar]]:
    event_type = draw(st.sampled_from(list(EVENT_TYPES)))
    fields = {name: draw(scalars) for name in sorted(catalogue()[event_type])
              if draw(st.integers(0, 5))}  # about one field in six missing
    context = {flag: draw(st.booleans()) for flag in CONTEXT_FLAGS if draw(st.integers(0, 3))}
    consent = draw(st.sampled_from([*CONSENT_STATES, "REFUSED", "REFUSED", "REFUSED"]))  # often: it is what matters
    sensitivity = draw(st.sampled_from([*SENSITIVITIES, "SPECIAL_CATEGORY"]))  # likewise
    facts = EventFacts(event_type, EVENT_TYPES[event_type][0], sensitivity, consent, context)
    return facts, fields


def around(draw: st.DrawFn, choices: list[str], own: str | None) -> list[str]:
    """A condition's list: from the vocabulary, and five times in six naming the event's own value."""
    picked = draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True))
    if own is not None and own not in picked and draw(st.integers(0, 5)):
        picked.append(own)
    return picked


@st.composite
def rules(draw: st.DrawFn, index: int, facts: EventFacts, fields: dict[str, Scalar], role: str) -> dict[str, Any]:
    decision = draw(st.sampled_from(["share", "share_fields", "share_fields", "withhold"]))
    roles = around(draw, list(ROLES), role if draw(st.integers(0, 5)) else None)
    when: dict[str, Any] = {"roles": roles}
    if draw(st.integers(0, 2)):  # a third of rules name no consent: anything but refused
        when["consent"] = around(draw, list(CONSENT_STATES), facts.consent)
    if draw(st.booleans()):
        when["event_types"] = around(draw, list(EVENT_TYPES), facts.event_type)
    if draw(st.integers(0, 3)) == 0:
        when["agencies"] = around(draw, list(AGENCIES), facts.agency)
    if draw(st.booleans()):
        when["sensitivity"] = around(draw, list(SENSITIVITIES), facts.sensitivity)
    if draw(st.integers(0, 2)) == 0:
        when["context_any"] = around(draw, list(CONTEXT_FLAGS),
                                     next((f for f, on in facts.context.items() if on), None))
    if draw(st.integers(0, 2)) == 0:
        names = draw(st.lists(st.sampled_from(sorted(catalogue()[facts.event_type]) + FIELDS[:3]),
                              min_size=1, max_size=2, unique=True))
        when["where"] = {name: around(draw, [*WORDS, ""], as_text(fields.get(name))) for name in names}
    rule: dict[str, Any] = {
        "id": f"rule-{index}", "description": "generated", "when": when, "decision": decision,
        "lawful_basis": draw(st.lists(st.sampled_from(list(LAWFUL_BASES) + ART_9), min_size=1, max_size=3,
                                      unique=True)),
        "purpose": "p", "necessity": draw(st.text(min_size=1, max_size=20).filter(str.strip)),
    }
    if decision == "share_fields" or (decision == "withhold" and draw(st.integers(0, 3))):
        rule["fields"] = draw(st.lists(st.sampled_from(sorted(fields) + GROUPS + FIELDS), min_size=1, max_size=12,
                                       unique=True))
    if "REFUSED" in when.get("consent", NOT_REFUSED) and decision != "withhold":
        rule["override_reason"] = f"risk of significant harm ({index})"
    return rule


@st.composite
def cases(draw: st.DrawFn) -> Case:
    facts, fields = draw(events())
    role = draw(st.sampled_from(list(ROLES)))
    written = [draw(rules(i, facts, fields, role)) for i in range(draw(st.integers(1, 10)))]
    policy = parse_policy(yaml.safe_dump({"policy": "generated", "rules": written}).encode(), "generated.yaml")
    return Case(written, policy, facts, fields, role)


# -- the oracle: the rule language read from the rules as written ------------------------------------

def applies(rule: dict[str, Any], case: Case, ignoring: str = "") -> bool:
    """Every condition of the rule holds for this event and role (but the one `ignoring` names)."""
    when, facts = rule["when"], case.facts
    held = {
        "roles": case.role in when["roles"],
        "event_types": facts.event_type in when.get("event_types", [facts.event_type]),
        "agencies": facts.agency in when.get("agencies", [facts.agency]),
        "sensitivity": facts.sensitivity in when.get("sensitivity", [facts.sensitivity]),
        "consent": facts.consent in when.get("consent", NOT_REFUSED),
        "context_any": "context_any" not in when or any(facts.context.get(f) is True for f in when["context_any"]),
        "where": all(as_text(case.fields.get(name)) in values for name, values in when.get("where", {}).items()),
    }
    return all(ok for condition, ok in held.items() if condition != ignoring)


def named(rule: dict[str, Any], case: Case) -> set[str]:
    """The event's fields a rule names: `share`, and `withhold` without fields, name them all."""
    if "fields" not in rule:
        return set(case.fields)
    return {f for f in case.fields for name in rule["fields"]
            if f == name or (name.endswith(".*") and f.startswith(name[:-1]))}


def article_9(rule: dict[str, Any]) -> bool:
    return any(basis in ART_9 for basis in rule["lawful_basis"])


def sharing(case: Case, ignoring: str = "") -> list[dict[str, Any]]:
    """The sharing rules that apply and may share this event (a special category event needs Article 9)."""
    return [r for r in case.rules if r["decision"] != "withhold" and applies(r, case, ignoring)
            and (article_9(r) or not case.special)]


def allowed(case: Case) -> set[str]:
    """Shown = what the applying sharing rules name, less what the applying withhold rules name."""
    shared = set().union(*(named(r, case) for r in sharing(case)))
    withheld = set().union(*(named(r, case) for r in case.rules if r["decision"] == "withhold" and applies(r, case)))
    return shared - withheld


# -- the properties: each returns whether it had something to check -----------------------------------

def no_field_outside_the_allowed_set(case: Case) -> bool:
    shown = set(view(case.fields, case.decision))
    assert shown <= allowed(case), f"shown beyond what the rules allow: {sorted(shown - allowed(case))}"
    # something to check: a rule of this role names a field the role must not see
    at_stake = set().union(*(named(r, case) for r in case.rules if case.role in r["when"]["roles"]
                             and r["decision"] != "withhold")) - allowed(case)
    return bool(at_stake)


def every_allowed_field_shown(case: Case) -> bool:
    shown = set(view(case.fields, case.decision))
    assert allowed(case) <= shown, f"withheld though the rules share it: {sorted(allowed(case) - shown)}"
    return bool(allowed(case))


def withheld_means_absent_not_blanked(case: Case) -> bool:
    decision = case.decision
    shown = view(case.fields, decision)
    assert set(shown) == set(decision.shared)
    assert set(decision.withheld) == set(case.fields) - allowed(case)
    assert not set(shown) & set(decision.withheld)
    assert all(shown[name] is case.fields[name] for name in shown)  # the values themselves, never blanked
    return bool(shown) and bool(decision.withheld)


def special_category_needs_article_9_and_a_reason(case: Case) -> bool:
    if not case.special or case.role in HEALTH_ROLES:
        return False
    decision = case.decision
    shown = set(view(case.fields, decision))
    reasoned = [r for r in sharing(case) if r["necessity"].strip()]  # only Article 9 rules, on this event
    assert shown <= set().union(*(named(r, case) for r in reasoned)), \
        "a special category field reached a non-health role without an Article 9 rule that applies"
    if shown:
        assert set(decision.lawful_basis) & set(ART_9)
    # something to check: a sharing rule applies and names a field; only Article 9 may let it out
    return any(named(r, case) for r in case.rules if r["decision"] != "withhold" and applies(r, case))


def refused_consent_needs_an_override_reason(case: Case) -> bool:
    if case.facts.consent != "REFUSED":
        return False
    decision = case.decision
    shown = set(view(case.fields, decision))
    overriding = [r for r in sharing(case) if r.get("override_reason")]
    assert shown <= set().union(*(named(r, case) for r in overriding)), \
        "shared with consent refused by a rule that names no override"
    if shown:
        assert decision.override_reason
        for rule in overriding:
            if named(rule, case):
                assert rule["override_reason"] in decision.override_reason
    # something to check: a sharing rule applies in all but consent and names a field
    return any(named(r, case) for r in sharing(case, ignoring="consent"))


Property = Callable[[Case], bool]
PROPERTIES: dict[str, tuple[Property, float]] = {  # each property and the least share of examples it checks
    # (floors about half the least share seen over five fresh runs each: a guard against a vacuous property)
    "outside the allowed set": (no_field_outside_the_allowed_set, 0.4),  # seen: about 0.6
    "allowed but not shown": (every_allowed_field_shown, 0.15),  # 0.30 to 0.54 over 16 runs; one CI run 0.24
    "absent not blanked": (withheld_means_absent_not_blanked, 0.08),  # 0.21 to 0.36: some shown, some withheld
    "special category": (special_category_needs_article_9_and_a_reason, 0.12),  # 0.25 to 0.39; one run below 0.18
    "refused consent": (refused_consent_needs_an_override_reason, 0.1),  # 0.20 to 0.36
}


def checked(prop: Property, examples: int = EXAMPLES, shrink: bool = True) -> Counter[bool]:
    """Run the property over generated cases; how many had something to check (True) and not."""
    seen: Counter[bool] = Counter()
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.generate)
    run_settings = settings(max_examples=examples, deadline=None, phases=phases, report_multiple_bugs=False,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    if not shrink:  # a broken engine's failures are not kept for replay
        run_settings = settings(run_settings, database=None)

    @run_settings
    @given(cases())
    def run(case: Case) -> None:
        had = prop(case)
        event(f"something to check: {had}")
        seen[had] += 1

    run()
    return seen


def assert_checked_often(seen: Counter[bool], share: float) -> None:
    total = seen[True] + seen[False]
    assert seen[True] >= share * total, f"something to check in only {seen[True]} of {total} examples"


def test_no_field_outside_the_roles_allowed_set_appears_in_its_view() -> None:
    assert_checked_often(checked(no_field_outside_the_allowed_set), PROPERTIES["outside the allowed set"][1])


def test_every_field_an_applying_rule_shares_and_none_withholds_appears_in_the_view() -> None:
    assert_checked_often(checked(every_allowed_field_shown), PROPERTIES["allowed but not shown"][1])


def test_withheld_means_absent_not_blanked() -> None:
    assert_checked_often(checked(withheld_means_absent_not_blanked), PROPERTIES["absent not blanked"][1])


def test_special_category_never_reaches_a_non_health_role_without_an_article_9_rule_and_reason() -> None:
    assert_checked_often(checked(special_category_needs_article_9_and_a_reason), PROPERTIES["special category"][1])


def test_refused_consent_is_shared_only_with_an_override_reason_recorded() -> None:
    assert_checked_often(checked(refused_consent_needs_an_override_reason), PROPERTIES["refused consent"][1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_rule_with_no_lawful_basis_is_rejected_at_load(data: st.DataObject) -> None:
    rule = data.draw(cases()).rules[0]
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


# -- the properties can fail: rule matching broken two ways ------------------------------------------

Matcher = Callable[[Rule, EventFacts, Any], bool]


def withhold_rules_never_match(real: Matcher) -> Matcher:
    return lambda rule, facts, fields: rule.decision != "withhold" and real(rule, facts, fields)


def share_rules_ignore_type_sensitivity_and_context(real: Matcher) -> Matcher:
    def matches(rule: Rule, facts: EventFacts, fields: Any) -> bool:
        if rule.decision == "withhold":
            return real(rule, facts, fields)
        blind = rule.model_copy(update={"when": rule.when.model_copy(
            update={"event_types": (), "sensitivity": (), "context_any": ()})})
        return real(blind, facts, fields)
    return matches


@contextmanager
def broken(monkeypatch: pytest.MonkeyPatch, breakage: Callable[[Matcher], Matcher]) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setattr(engine, "_matches", breakage(engine._matches))
        yield


@pytest.mark.parametrize(("breakage", "prop"), [
    (withhold_rules_never_match, "outside the allowed set"),
    (withhold_rules_never_match, "absent not blanked"),
    (share_rules_ignore_type_sensitivity_and_context, "outside the allowed set"),
    (share_rules_ignore_type_sensitivity_and_context, "absent not blanked"),
    (share_rules_ignore_type_sensitivity_and_context, "special category"),
    (share_rules_ignore_type_sensitivity_and_context, "refused consent"),
])
def test_an_engine_with_broken_rule_matching_fails_the_property(
        monkeypatch: pytest.MonkeyPatch, breakage: Callable[[Matcher], Matcher], prop: str) -> None:
    # Up to five times the examples: a run stops at its first failure, and a broken engine that one
    # run of 300 missed once (the special-category property, by chance) is still found well within.
    with broken(monkeypatch, breakage), pytest.raises(AssertionError):
        checked(PROPERTIES[prop][0], examples=5 * EXAMPLES, shrink=False)
