from datetime import UTC, date, datetime

import pytest

from mash.schema_catalogue import default_catalogue
from mash.validator import compile_schema

SCHEMA = {
    "type": "record", "name": "R", "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "count", "type": "int"},
        {"name": "ratio", "type": ["null", "double"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "born", "type": ["null", {"type": "int", "logicalType": "date"}], "default": None},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "again", "type": ["null", "Kind"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "next", "type": ["null", "R"], "default": None},
    ]}
check = compile_schema(SCHEMA)
GOOD = {"flag": True, "count": 3, "ratio": 0.5, "at": datetime(2026, 1, 1, tzinfo=UTC), "born": date(2016, 4, 12),
        "kind": "A", "again": "B", "tags": ["x"], "next": None}


def test_a_good_record_passes() -> None:
    assert check(GOOD, "$") is None
    assert check({**GOOD, "next": {**GOOD, "next": None}}, "$") is None


@pytest.mark.parametrize("change, problem", [
    ({"flag": "yes"}, "$.flag: expected boolean, got str"),
    ({"count": True}, "$.count: expected int, got bool"),
    ({"count": 2**40}, "$.count: expected int"),
    ({"ratio": "0.5"}, "$.ratio: str '0.5' matches none of"),
    ({"kind": "C"}, "$.kind: 'C' is not one of Kind's symbols"),
    ({"again": "C"}, "$.again: str 'C' matches none of"),
    ({"tags": ["x", 1]}, "$.tags[1]: expected string, got int"),
    ({"at": "2026-01-01"}, "$.at: expected timestamp-millis"),
    ({"extra": 1}, "$: unknown field(s) extra"),
    ({"next": {**GOOD, "flag": 0}}, "$.next: dict"),
])
def test_wrong_values_are_named_by_path(change: dict, problem: str) -> None:  # type: ignore[type-arg]
    assert (check({**GOOD, **change}, "$") or "").startswith(problem)


def test_missing_fields_fail_unless_they_have_a_default() -> None:
    without_count = {k: v for k, v in GOOD.items() if k != "count"}
    assert check(without_count, "$") == "$.count: missing"
    without_ratio = {k: v for k, v in GOOD.items() if k != "ratio"}
    assert check(without_ratio, "$") is None


def test_every_shipped_schema_compiles() -> None:
    for versions in default_catalogue().families().values():
        for version in versions:
            compile_schema(version.expanded)
