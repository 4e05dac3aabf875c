"""The level-4 referral override and the social care v2 fields attacked.

referral-at-significant-harm-override shares a consent-REFUSED level-4 REFERRAL in full with the
social worker and manager. Attacked: other event types and kinds, a level given as "04", " 4", 4.0,
True, the rule granting any other role anything (decided with and without the rule over generated
events), and hostile levels and categories from the connector (a dead letter naming the field)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.registry import build_connector
from connectors.sdk.runner import prepare_all
from connectors.social_care.connector import LEVELS_OF_NEED
from mash.codec import Codec
from services.sharing.decide import EventFacts, decide, decide_all
from services.sharing.fields import EVENT_TYPES, catalogue
from services.sharing.policy import load_policy
from services.sharing.vocabulary import CONSENT_STATES, ROLES
from services.triage.scoring import indicators_of
from services.triage.scoring_file import load_scoring

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "policies" / "sharing" / "default.yaml")
WITHOUT = replace(POLICY, rules=tuple(r for r in POLICY.rules if r.id != "referral-at-significant-harm-override"))
RULE = "referral-at-significant-harm-override"
KINDS = ["REFERRAL", "CP_PLAN_STARTED", "CP_PLAN_ENDED", "LOOKED_AFTER_STARTED", "LOOKED_AFTER_ENDED", "OTHER"]
SOCIAL = "social_care.case_event"


def _fields(event_type: str, **payload: Any) -> dict[str, Any]:
    names = sorted(catalogue()[event_type])
    found: dict[str, Any] = {n: "x" for n in names if n.startswith(("subject.", "payload."))}
    found.update({f"payload.{k}": v for k, v in payload.items()})
    return found


def _facts(event_type: str = SOCIAL, consent: str = "REFUSED") -> EventFacts:
    return EventFacts(event_type, EVENT_TYPES[event_type][0], "STANDARD", consent, {})


def test_the_rule_is_in_the_policy() -> None:
    assert RULE in {r.id for r in POLICY.rules}
    decision = decide(POLICY, _facts(), _fields(SOCIAL, kind="REFERRAL", level_of_need=4), "mash_social_worker")
    assert decision.outcome == "SHARE" and RULE in decision.rule_ids and decision.override_reason


@pytest.mark.parametrize("level", ["04", " 4", "4 ", 4.0, True, "4.0", "IV", 40, -4, "", None, "\u0664", "\uff14"])
def test_a_level_written_otherwise_than_4_never_triggers_the_override(level: object) -> None:
    for role in ROLES:
        decision = decide(POLICY, _facts(), _fields(SOCIAL, kind="REFERRAL", level_of_need=level), role)
        assert RULE not in decision.rule_ids
        assert decision.outcome == "WITHHOLD"


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "REFERRAL"] + ["referral", " REFERRAL"])
def test_another_kind_at_level_4_is_not_overridden(kind: str) -> None:
    for role in ROLES:
        decision = decide(POLICY, _facts(), _fields(SOCIAL, kind=kind, level_of_need=4), role)
        assert RULE not in decision.rule_ids and decision.outcome == "WITHHOLD"


@pytest.mark.parametrize("event_type", sorted(set(EVENT_TYPES) - {SOCIAL}))
def test_another_event_type_with_the_same_fields_is_not_overridden(event_type: str) -> None:
    fields = {**_fields(event_type), "payload.kind": "REFERRAL", "payload.level_of_need": 4}
    for role in ROLES:
        assert RULE not in decide(POLICY, _facts(event_type), fields, role).rule_ids


EVENTS = st.fixed_dictionaries({
    "event_type": st.sampled_from(sorted(EVENT_TYPES)),
    "consent": st.sampled_from(sorted(CONSENT_STATES)),
    "kind": st.sampled_from([*KINDS, None]),
    "level": st.sampled_from([None, 1, 2, 3, 4, "4", "04", 4.0]),
    "category": st.sampled_from([None, "SEXUAL", "PHYSICAL", "NEGLECT"]),
    "context": st.fixed_dictionaries({"child_protection_plan": st.booleans(), "looked_after": st.booleans(),
                                      "open_social_care": st.booleans()}),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_the_rule_gives_only_the_social_worker_and_manager_anything_and_only_for_a_refused_level_4_referral(
        e: dict[str, Any]) -> None:
    facts = EventFacts(e["event_type"], EVENT_TYPES[e["event_type"]][0], "STANDARD", e["consent"], e["context"])
    fields = _fields(e["event_type"], kind=e["kind"], level_of_need=e["level"], referral_category=e["category"])
    fields = {k: v for k, v in fields.items() if v is not None}
    with_rule = {d.role: d for d in decide_all(POLICY, facts, fields)}
    without = {d.role: d for d in decide_all(WITHOUT, facts, fields)}
    triggered = (e["event_type"] == SOCIAL and e["consent"] == "REFUSED" and e["kind"] == "REFERRAL"
                 and any(e["level"] == v and type(e["level"]) is type(v) for v in (4, "4")))  # 4.0 == 4 in Python
    for role in ROLES:
        gained = set(with_rule[role].shared) - set(without[role].shared)
        assert set(without[role].shared) <= set(with_rule[role].shared)
        if gained:
            assert triggered and role in ("mash_social_worker", "triage_manager")
        if triggered and role in ("mash_social_worker", "triage_manager"):
            assert with_rule[role].outcome == "SHARE" and with_rule[role].override_reason


def test_a_level_4_referral_withheld_from_police_raises_nothing_for_police_to_score() -> None:
    """What the rule shares is what the scorer reads: the level-4 indicators come only from the shared view."""
    scoring = load_scoring()
    fields = _fields(SOCIAL, kind="REFERRAL", level_of_need=4, referral_category="SEXUAL")
    police = decide(POLICY, _facts(), fields, "mash_police_officer")
    seen = {k.split(".", 1)[1]: fields[k] for k in police.shared if k.startswith("payload.")}
    assert indicators_of(scoring, SOCIAL, {"payload": seen}) == ()
    worker = decide(POLICY, _facts(), fields, "mash_social_worker")
    shown = {k.split(".", 1)[1]: fields[k] for k in worker.shared if k.startswith("payload.")}
    assert {"referral-level-4", "referral-sexual-abuse", "social-care-referral"} <= set(
        indicators_of(scoring, SOCIAL, {"payload": shown}))


# -- the connector: hostile levels and categories ------------------------------------------------

def _outcomes(tmp_path: Path, changes: list[dict[str, object]]) -> list[tuple[dict[str, Any] | None, str | None]]:
    connector = build_connector("social_care", tmp_path / "state")
    base = json.loads(connector.sample.read_text().splitlines()[0])
    path = tmp_path / "referrals.jsonl"
    path.write_text("\n".join(json.dumps({**base, **change}) for change in changes))
    found = []
    for outcome in prepare_all(connector, connector.sample_records(path), Codec()):
        payload = Codec().decode(outcome.value)[0]["payload"] if outcome.error is None else None
        found.append((payload, None if outcome.error is None else str(outcome.error)))
    return found


LEVELS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                   st.text(max_size=6), st.sampled_from(["4", " 4 ", "04", "4.0", "+4", "\u0664", "\uff14", "1e0"]),
                   st.lists(st.integers(1, 4), max_size=2),
                   st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level=LEVELS)
def test_any_level_of_need_is_an_exact_1_to_4_or_a_dead_letter_naming_the_field(tmp_path: Path, level: Any) -> None:
    [(payload, error)] = _outcomes(tmp_path, [{"level_of_need": level}])
    if payload is not None:
        got = payload["level_of_need"]
        if level is None or level == "":
            assert got is None
        else:
            assert isinstance(level, (int, str)) and not isinstance(level, bool)
            assert str(level).strip() in LEVELS_OF_NEED and got == int(str(level).strip())
    else:
        assert error is not None and "'level_of_need'" in error


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(category=st.one_of(st.booleans(), st.integers(), st.text(max_size=12), st.lists(st.text(max_size=3), max_size=2),
                          st.sampled_from(["sexual", "SEXUAL ", "Sexual\u0000", "SEXUAL;DROP", "OTHER"])))
def test_any_referral_category_is_a_listed_one_or_a_dead_letter_naming_the_field(tmp_path: Path,
                                                                                 category: Any) -> None:
    [(payload, error)] = _outcomes(tmp_path, [{"referral_category": category}])
    if payload is not None:
        got = payload["referral_category"]
        assert got is None or got in {"NEGLECT", "PHYSICAL", "EMOTIONAL", "SEXUAL", "DOMESTIC_ABUSE",
                                      "EXPLOITATION", "MISSING", "OTHER"}
        if got is None:
            assert category is None or (isinstance(category, str) and not category.strip())
    else:
        assert error is not None and "'referral_category'" in error
