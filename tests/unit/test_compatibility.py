from typing import Any

from mash.compatibility import backward_problems


def record(*fields: dict[str, Any], name: str = "R") -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


def test_adding_a_field_with_a_default_is_backward_compatible() -> None:
    old = record({"name": "a", "type": "int"})
    new = record({"name": "a", "type": "int"}, {"name": "b", "type": ["null", "string"], "default": None})
    assert backward_problems(new, old) == []


def test_adding_a_field_without_a_default_is_not() -> None:
    old = record({"name": "a", "type": "int"})
    new = record({"name": "a", "type": "int"}, {"name": "b", "type": "string"})
    assert backward_problems(new, old) == ["$.b: new field without a default"]


def test_removing_a_field_is_backward_compatible() -> None:
    old = record({"name": "a", "type": "int"}, {"name": "b", "type": "string"})
    new = record({"name": "a", "type": "int"})
    assert backward_problems(new, old) == []


def test_numeric_promotion_is_allowed_and_narrowing_is_not() -> None:
    assert backward_problems(record({"name": "a", "type": "long"}), record({"name": "a", "type": "int"})) == []
    assert backward_problems(record({"name": "a", "type": "int"}), record({"name": "a", "type": "long"})) == [
        "$.a: reader has int, writer has long"
    ]


def test_enum_symbols_removed_need_a_reader_default() -> None:
    old = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
    assert backward_problems({"type": "enum", "name": "E", "symbols": ["A"]}, old) != []
    assert backward_problems({"type": "enum", "name": "E", "symbols": ["A"], "default": "A"}, old) == []


def test_making_a_field_optional_is_compatible_but_required_again_is_not() -> None:
    required = record({"name": "a", "type": "string"})
    optional = record({"name": "a", "type": ["null", "string"], "default": None})
    assert backward_problems(optional, required) == []
    assert backward_problems(required, optional) == ["$.a<0>: reader has string, writer has null"]


def test_renamed_field_with_alias_is_compatible() -> None:
    old = record({"name": "surname", "type": "string"})
    new = record({"name": "family_name", "type": "string", "aliases": ["surname"]})
    assert backward_problems(new, old) == []


def test_nested_problems_name_their_path() -> None:
    old = record({"name": "inner", "type": record({"name": "x", "type": "int"}, name="I")})
    new = record({"name": "inner", "type": record({"name": "x", "type": "boolean"}, name="I")})
    assert backward_problems(new, old) == ["$.inner.x: reader has boolean, writer has int"]


def test_logical_types_compare_by_their_underlying_type() -> None:
    old = record({"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}})
    new = record({"name": "at", "type": "long"})
    assert backward_problems(new, old) == []


def test_arrays_and_maps_check_their_items() -> None:
    old = record({"name": "xs", "type": {"type": "array", "items": "string"}})
    new = record({"name": "xs", "type": {"type": "array", "items": "int"}})
    assert backward_problems(new, old) == ["$.xs[]: reader has int, writer has string"]
