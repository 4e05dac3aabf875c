"""The sharing policy: YAML rules a governance lead can read, validated at load.

Loading is strict because a mistake here shares a child's data with the wrong person: an unknown
key, role, field, lawful basis or consent state, a duplicate rule id, a rule without a lawful
basis, or one that matches refused consent without naming why it overrides it, is an error that
names the file, the line and the rule. The version of a policy is the SHA-256 of its file, so
each decision records exactly which text decided it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.sharing.fields import EVENT_TYPES, all_fields
from services.sharing.vocabulary import (
    AGENCIES,
    CONSENT_STATES,
    CONTEXT_FLAGS,
    LAWFUL_BASES,
    ROLES,
    SENSITIVITIES,
)

if TYPE_CHECKING:
    from typing import TypeAlias
    Role: TypeAlias = str
    Basis: TypeAlias = str
    EventType: TypeAlias = str
    Agency: TypeAlias = str
    SensitivityName: TypeAlias = str
    Consent: TypeAlias = str
    ContextFlag: TypeAlias = str
else:  # closed lists, so a typo fails at load with the list it should have been from
    Role = Literal[tuple(ROLES)]
    Basis = Literal[tuple(LAWFUL_BASES)]
    EventType = Literal[tuple(EVENT_TYPES)]
    Agency = Literal[AGENCIES]
    SensitivityName = Literal[SENSITIVITIES]
    Consent = Literal[CONSENT_STATES]
    ContextFlag = Literal[CONTEXT_FLAGS]
DEFAULT_CONSENT = tuple(c for c in CONSENT_STATES if c != "REFUSED")


class PolicyError(ValueError):
    """A policy that must not be used; the message names the file, line and rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """What a rule applies to; an omitted condition matches anything (consent: anything but refused)."""

    roles: tuple[Role, ...] = Field(min_length=1)
    event_types: tuple[EventType, ...] = ()
    agencies: tuple[Agency, ...] = ()
    sensitivity: tuple[SensitivityName, ...] = ()
    consent: tuple[Consent, ...] = DEFAULT_CONSENT
    context_any: tuple[ContextFlag, ...] = ()  # at least one of these flags is set on the child
    where: dict[str, tuple[str, ...]] = {}  # field -> values it must take (compared as text)


class Rule(_Strict):
    id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = Field(min_length=1)
    when: When
    decision: Literal["share", "share_fields", "withhold"]
    fields: tuple[str, ...] = ()  # share_fields: what it shares; withhold: what it removes (none: all)
    lawful_basis: tuple[Basis, ...] = Field(min_length=1)
    purpose: str = Field(min_length=1)
    necessity: str = Field(min_length=1)
    override_reason: str | None = None  # why refused consent is overridden (risk of significant harm)

    @field_validator("lawful_basis", mode="before")
    @classmethod
    def _basis_given(cls, value: Any) -> Any:
        if value in (None, "", []):
            raise ValueError("every rule names its lawful basis (one or more of: " + ", ".join(LAWFUL_BASES) + ")")
        return value

    @property
    def article_9(self) -> bool:
        return any(LAWFUL_BASES[b].article_9 for b in self.lawful_basis)


class PolicyFile(_Strict):
    policy: str = Field(min_length=1)
    description: str = ""
    rules: tuple[Rule, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Policy:
    name: str
    version: str  # SHA-256 of the file's bytes
    source: str
    rules: tuple[Rule, ...]

    @cached_property
    def where_fields(self) -> tuple[str, ...]:
        """Every field a rule's condition looks at: with the event's facts, all a decision depends on."""
        return tuple(sorted({name for r in self.rules for name in r.when.where}))

    @cached_property
    def by_role(self) -> dict[str, tuple[Rule, ...]]:
        """Each role's rules, in policy order: what a decision for that role looks through."""
        return {role: tuple(r for r in self.rules if role in r.when.roles) for role in ROLES}


def load_policy(path: Path) -> Policy:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the policy ({exc.strerror})") from None
    return parse_policy(raw, str(path))


def parse_policy(raw: bytes, source: str) -> Policy:
    node = _compose(raw, source)
    data = _construct(node, source)
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # a rule that fails also empties the list of rules: say only what is wrong with the rule
        errors = [e for e in errors if not (e["loc"] == ("rules",) and e["type"] == "too_short"
                                            and any(len(o["loc"]) > 1 for o in errors))]
        raise PolicyError("\n".join(_describe(error, node, data, source) for error in errors)) from None
    problems = [problem for index, rule in enumerate(parsed.rules)
                for problem in _rule_problems(rule, index, node, source)]
    problems += _duplicates(parsed.rules, node, source)
    if problems:
        raise PolicyError("\n".join(problems))
    return Policy(parsed.policy, hashlib.sha256(raw).hexdigest(), source, parsed.rules)


# -- checks pydantic cannot make: fields exist, refused consent is justified, ids are unique ------

def _rule_problems(rule: Rule, index: int, root: yaml.Node, source: str) -> list[str]:
    known = all_fields()
    problems = []
    where = _place(root, ("rules", index), source, rule.id)
    for names, loc in ((rule.fields, ("rules", index, "fields")), (rule.when.where, ("rules", index, "when", "where"))):
        for name in names:
            if not _field_known(name, known):
                problems.append(f"{_place(root, loc, source, rule.id)}: unknown field {name!r}; fields are named "
                                "like subject.given_name, payload.summary, context.looked_after, or a group such "
                                "as payload.*")
    if rule.decision == "share_fields" and not rule.fields:
        problems.append(f"{where}: decision share_fields needs the fields it shares")
    if rule.decision == "share" and rule.fields:
        problems.append(f"{where}: decision share shares every field; use share_fields to name them")
    if "REFUSED" in rule.when.consent and rule.decision != "withhold" and not rule.override_reason:
        problems.append(f"{where}: the rule shares when consent is REFUSED but names no override_reason "
                        "(the risk of significant harm that justifies sharing without consent)")
    if rule.override_reason and "REFUSED" not in rule.when.consent:
        problems.append(f"{where}: override_reason given but the rule does not apply when consent is REFUSED")
    return problems


def _field_known(name: str, known: frozenset[str]) -> bool:
    if name.endswith(".*"):
        return any(f.startswith(name[:-1]) for f in known)
    return name in known


def expand(names: tuple[str, ...], present: frozenset[str] | set[str]) -> frozenset[str]:
    """The event's fields a rule's list names, groups (`payload.*`) included."""
    return _expand(names, present if isinstance(present, frozenset) else frozenset(present))


@lru_cache(maxsize=4096)  # an event type's fields are always the same set: a few keys in all
def _expand(names: tuple[str, ...], present: frozenset[str]) -> frozenset[str]:
    out = set()
    for name in names:
        if name.endswith(".*"):
            out |= {f for f in present if f.startswith(name[:-1])}
        elif name in present:
            out.add(name)
    return frozenset(out)


def _duplicates(rules: tuple[Rule, ...], root: yaml.Node, source: str) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules):
        if rule.id in first:
            problems.append(f"{_place(root, ('rules', index), source, rule.id)}: duplicate rule id {rule.id!r} "
                            f"(first at line {_line(root, ('rules', first[rule.id]))})")
        first.setdefault(rule.id, index)
    return problems


# -- YAML with places: every error names the line ---------------------------------------------------

def _compose(raw: bytes, source: str) -> yaml.Node:
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise PolicyError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None:
        raise PolicyError(f"{source}: the policy is empty")
    return node


def _construct(node: yaml.Node, source: str) -> Any:
    """Plain data from the node tree, refusing duplicate keys (YAML would keep the last silently)."""
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, source)
            if key in out:
                raise PolicyError(f"{source}: line {key_node.start_mark.line + 1}: key {key!r} given twice")
            out[key] = _construct(value_node, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, source) for item in node.value]
    return yaml.SafeLoader(b"").construct_object(node, deep=True)


def _node_at(root: yaml.Node, loc: tuple[Any, ...]) -> yaml.Node:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                key = next((k for k, _ in node.value if k.value == part), None)
                return key or node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    return node


def _line(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    return int(_node_at(root, loc).start_mark.line) + 1


def _place(root: yaml.Node, loc: tuple[Any, ...], source: str, rule_id: str | None) -> str:
    rule = f" rule {rule_id!r}" if rule_id else ""
    return f"{source}: line {_line(root, loc)}:{rule}"


def _describe(error: Any, root: yaml.Node, data: Any, source: str) -> str:
    loc = tuple(error["loc"])
    rule_id = None
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(data, dict):
        rules = data.get("rules")
        if isinstance(rules, list) and isinstance(loc[1], int) and loc[1] < len(rules) \
                and isinstance(rules[loc[1]], dict):
            rule_id = rules[loc[1]].get("id")
    path = ".".join(str(p) for p in loc if not str(p).startswith("literal["))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif error["type"] == "literal_error":
        message = f"{error['input']!r} is not one of: {error['ctx']['expected']}"
    return f"{_place(root, loc, source, rule_id)} {path}: {message}"
