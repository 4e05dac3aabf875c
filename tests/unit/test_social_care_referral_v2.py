"""A referral says what the referrer saw (social care payload v2): its category of concern and the
level of need the referrer judged. Both optional, so a case management system that sends neither
still maps; anything else than the listed categories or a level 1 to 4 is a dead letter naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.registry import build_connector
from connectors.sdk.runner import prepare_all
from mash.codec import Codec


def _outcomes(tmp_path: Path, changes: list[dict[str, object]]) -> list[tuple[dict[str, object] | None, str | None]]:
    connector = build_connector("social_care", tmp_path / "state")
    base = json.loads(connector.sample.read_text().splitlines()[0])
    path = tmp_path / "referrals.jsonl"
    path.write_text("\n".join(json.dumps({k: v for k, v in {**base, **change}.items() if v != "<drop>"})
                              for change in changes))
    found = []
    for outcome in prepare_all(connector, connector.sample_records(path), Codec()):
        payload = Codec().decode(outcome.value)[0]["payload"] if outcome.error is None else None
        found.append((payload, None if outcome.error is None else str(outcome.error)))
    return found


def test_the_category_and_level_are_carried_as_the_referrer_gave_them(tmp_path: Path) -> None:
    (first, _), (second, _) = _outcomes(tmp_path, [{"referral_category": "sexual", "level_of_need": 4},
                                                   {"referral_category": "NEGLECT", "level_of_need": " 3 "}])
    assert first is not None and second is not None
    assert (first["referral_category"], first["level_of_need"]) == ("SEXUAL", 4)
    assert (second["referral_category"], second["level_of_need"]) == ("NEGLECT", 3)


def test_a_referral_in_the_first_shape_still_maps_with_neither(tmp_path: Path) -> None:
    [(payload, error)] = _outcomes(tmp_path, [{"referral_category": "<drop>", "level_of_need": "<drop>"}])
    assert error is None and payload is not None
    assert (payload["referral_category"], payload["level_of_need"]) == (None, None)


@pytest.mark.parametrize("level", [0, 5, 2.5, "high", True, "٣", "4.0", -1, 10**30, [4], {"level": 4}])
def test_a_level_of_need_outside_1_to_4_is_a_dead_letter_naming_the_field(tmp_path: Path, level: object) -> None:
    [(payload, error)] = _outcomes(tmp_path, [{"level_of_need": level}])
    assert payload is None and error is not None and "'level_of_need'" in error


@pytest.mark.parametrize("category", ["ABUSE", "<script>", "x" * 5000])
def test_an_unknown_referral_category_is_a_dead_letter_naming_the_field(tmp_path: Path, category: str) -> None:
    [(payload, error)] = _outcomes(tmp_path, [{"referral_category": category}])
    assert payload is None and error is not None and "'referral_category'" in error


def test_a_level_too_long_for_python_to_print_is_a_dead_letter_naming_the_field() -> None:
    from connectors.sdk import MappingError
    from connectors.social_care.connector import parse_level

    with pytest.raises(MappingError, match="'level_of_need'"):
        parse_level({"level_of_need": 10**5000}, "level_of_need")
