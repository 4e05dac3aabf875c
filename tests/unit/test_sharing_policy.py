"""Loading a sharing policy: every malformed policy gives an error naming file, line and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.sharing.policy import PolicyError, load_policy, parse_policy

DEFAULT = Path(__file__).resolve().parents[2] / "policies" / "sharing" / "default.yaml"

GOOD_RULE = """\
  - id: police-to-police
    description: d
    when: {roles: [mash_police_officer]}
    decision: share
    lawful_basis: [UK_GDPR_6_1_E]
    purpose: p
    necessity: n
"""


def load(text: str) -> None:
    parse_policy(text.encode(), "policy.yaml")


def error_of(text: str) -> str:
    with pytest.raises(PolicyError) as caught:
        load(text)
    return str(caught.value)


def test_the_shipped_policy_loads_and_its_version_is_the_hash_of_its_text() -> None:
    policy = load_policy(DEFAULT)
    assert len(policy.rules) >= 10
    again = parse_policy(DEFAULT.read_bytes() + b"\n# a comment changes the text\n", "x")
    assert len(policy.version) == 64 and again.version != policy.version


def test_bad_yaml_names_the_line() -> None:
    assert error_of("policy: p\nrules:\n  - id: [unclosed\n") .startswith("policy.yaml: line 4")


def test_an_unknown_key_names_its_line_and_rule() -> None:
    message = error_of("policy: p\nrules:\n" + GOOD_RULE + "    colour: red\n")
    assert "line 10" in message and "'police-to-police'" in message and "unknown key 'colour'" in message


def test_an_unknown_field_name_is_refused() -> None:
    text = "policy: p\nrules:\n" + GOOD_RULE.replace("decision: share", "decision: share_fields\n"
                                                   "    fields: [subject.given_name, payload.shoe_size]")
    message = error_of(text)
    assert "unknown field 'payload.shoe_size'" in message and "line 7" in message


def test_an_unknown_role_is_refused_with_the_roles_it_could_be() -> None:
    message = error_of("policy: p\nrules:\n" + GOOD_RULE.replace("mash_police_officer", "mash_polce_officer"))
    assert "'mash_polce_officer' is not one of" in message and "mash_police_officer" in message
    assert "line 5" in message


def test_a_rule_without_lawful_basis_is_refused() -> None:
    for broken in (GOOD_RULE.replace("    lawful_basis: [UK_GDPR_6_1_E]\n", ""),
                   GOOD_RULE.replace("[UK_GDPR_6_1_E]", "[]")):
        message = error_of("policy: p\nrules:\n" + broken)
        assert "lawful_basis" in message and "'police-to-police'" in message


def test_a_lawful_basis_outside_the_closed_list_is_refused() -> None:
    message = error_of("policy: p\nrules:\n" + GOOD_RULE.replace("UK_GDPR_6_1_E", "BECAUSE_WE_CAN"))
    assert "'BECAUSE_WE_CAN' is not one of" in message


def test_a_duplicate_rule_id_names_both_places() -> None:
    message = error_of("policy: p\nrules:\n" + GOOD_RULE + GOOD_RULE)
    assert "line 10" in message and "duplicate rule id 'police-to-police'" in message and "first at line 3" in message


def test_sharing_despite_refused_consent_needs_an_override_reason() -> None:
    text = "policy: p\nrules:\n" + GOOD_RULE.replace("roles: [mash_police_officer]",
                                                   "roles: [mash_police_officer], consent: [REFUSED]")
    assert "names no override_reason" in error_of(text)
    assert load(text.replace("    necessity: n\n", "    necessity: n\n    override_reason: risk of harm\n")) is None


def test_a_key_given_twice_is_refused_not_silently_overwritten() -> None:
    twice = GOOD_RULE.replace("    purpose: p\n", "    purpose: p\n    purpose: q\n")
    message = error_of("policy: p\nrules:\n" + twice)
    assert "key 'purpose' given twice" in message and "line 9" in message


def test_an_empty_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    assert "empty" in error_of("")
    with pytest.raises(PolicyError, match="cannot read the policy"):
        load_policy(tmp_path / "absent.yaml")


def test_the_plain_english_page_describes_this_version_and_every_rule() -> None:
    policy = load_policy(DEFAULT)
    page = DEFAULT.with_suffix(".md").read_text()
    assert f"`{policy.version}`" in page, "default.yaml changed: update default.md and its version line"
    assert all(f"`{rule.id}`" in page for rule in policy.rules)


def test_the_shipped_policy_passes_its_cases(capsys: pytest.CaptureFixture[str]) -> None:
    from services.sharing.cli import _test

    class Args:
        policy = DEFAULT
        cases = [DEFAULT.with_name("default.cases.yaml")]

    assert _test(Args()) == 0, capsys.readouterr().out  # type: ignore[arg-type]


def test_a_policy_change_that_breaks_a_case_fails_the_test(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from services.sharing.cli import _test

    loosened = tmp_path / "policy.yaml"
    loosened.write_text(DEFAULT.read_text().replace(
        "roles: [mash_police_officer, mash_health_practitioner, education_safeguarding_lead]",
        "roles: [mash_police_officer, mash_health_practitioner, education_safeguarding_lead, mash_social_worker]")
        .replace("    fields: [payload.summary, payload.detail, subject.address_line]",
                 "    fields: [payload.summary]"))

    class Args:
        policy = loosened
        cases = [DEFAULT.with_name("default.cases.yaml")]

    assert _test(Args()) == 1  # type: ignore[arg-type]
    assert "shared but expected withheld: payload.detail" in capsys.readouterr().out
