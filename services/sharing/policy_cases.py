"""`mash policy test`: policy authors' expected decisions, checked against the policy.

The same idea as `promtool test rules`: a change to the policy that alters a decision someone
wrote down as expected fails, in review and in CI, before it reaches a child's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.sharing.decide import EventFacts, RoleDecision, decide
from services.sharing.fields import EVENT_TYPES, Scalar, catalogue
from services.sharing.policy import Consent, ContextFlag, EventType, Policy, PolicyError, Role, SensitivityName
from services.sharing.vocabulary import CONTEXT_FLAGS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseEvent(_Strict):
    event_type: EventType
    sensitivity: SensitivityName | None = None  # default: special category for health events
    consent: Consent = "GIVEN"
    context: dict[ContextFlag, bool] = {}
    fields: dict[str, Scalar] = {}


class Expectation(_Strict):
    outcome: Literal["SHARE", "SHARE_FIELDS", "WITHHOLD"] | None = None
    shares: tuple[str, ...] = ()  # these fields must be in the view
    withholds: tuple[str, ...] = ()  # these must not
    rules: tuple[str, ...] | None = None  # exactly these rules matched
    override_reason: bool | None = None  # an override reason is (not) recorded


class Case(_Strict):
    name: str
    event: CaseEvent
    expect: dict[Role, Expectation] = Field(min_length=1)


class CaseFile(_Strict):
    cases: tuple[Case, ...] = Field(min_length=1)


@dataclass(frozen=True)
class Failure:
    case: str
    role: str
    problem: str

    def __str__(self) -> str:
        return f"FAIL {self.case} [{self.role}]: {self.problem}"


def load_cases(path: Path) -> list[Case]:
    try:
        data = yaml.safe_load(path.read_text())
        return list(CaseFile.model_validate(data).cases)
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{path}: cannot read the cases: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PolicyError(f"{path}: {problems}") from None


def run_case(policy: Policy, case: Case) -> list[Failure]:
    facts, fields = sample(case.event)
    unknown = [f for f in case.event.fields if f not in catalogue()[case.event.event_type]]
    if unknown:
        return [Failure(case.name, "-", f"fields not in a {case.event.event_type} event: {', '.join(unknown)}")]
    failures = []
    for role, expected in case.expect.items():
        decision = decide(policy, facts, fields, role)
        failures += [Failure(case.name, role, problem) for problem in _compare(decision, expected)]
    return failures


def sample(event: CaseEvent) -> tuple[EventFacts, dict[str, Scalar]]:
    """A whole event of the type: every field present, placeholders unless the case gives a value."""
    agency = EVENT_TYPES[event.event_type][0]
    sensitivity = event.sensitivity or ("SPECIAL_CATEGORY" if agency == "HEALTH" else "STANDARD")
    fields: dict[str, Scalar] = {name: f"<{name}>" for name in catalogue()[event.event_type]}
    fields.update({f"context.{flag}": event.context.get(flag, False) for flag in CONTEXT_FLAGS})
    fields.update({k: v for k, v in event.fields.items() if k in fields})  # others: reported by run_case
    facts = EventFacts(event.event_type, agency, sensitivity, event.consent, dict(event.context))
    return facts, fields


def _compare(decision: RoleDecision, expected: Expectation) -> list[str]:
    problems = []
    if expected.outcome and decision.outcome != expected.outcome:
        problems.append(f"outcome {decision.outcome}, expected {expected.outcome} (rules matched: "
                        f"{', '.join(decision.rule_ids) or 'none'})")
    missing = [f for f in expected.shares if f not in decision.shared]
    if missing:
        problems.append(f"not shared: {', '.join(missing)}")
    leaked = [f for f in expected.withholds if f in decision.shared]
    if leaked:
        problems.append(f"shared but expected withheld: {', '.join(leaked)}")
    if expected.rules is not None and tuple(expected.rules) != decision.rule_ids:
        problems.append(f"rules matched {list(decision.rule_ids)}, expected {list(expected.rules)}")
    if expected.override_reason is not None and bool(decision.override_reason) != expected.override_reason:
        problems.append("an override reason was recorded" if decision.override_reason
                        else "no override reason was recorded")
    return problems
