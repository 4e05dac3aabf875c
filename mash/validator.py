"""Checks a record against an Avro schema before encoding, fast, with the path of the first error.

fastavro's writer coerces some wrong types (e.g. "yes" for a boolean) rather than refuse them,
and fastavro's own validator builds error objects for every union branch it tries, which costs
more than encoding itself. This compiles a schema once into plain checks and reports the first
problem as `$.payload.children_present: expected boolean, got str`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

Check = Callable[[Any, str], str | None]  # (value, path) -> problem or None

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def compile_schema(schema: Any) -> Check:
    """The check for `schema` (fastavro's parsed form, named types expanded)."""
    return _compile(schema, {})


def _compile(schema: Any, named: dict[str, Check]) -> Check:
    if isinstance(schema, list):
        return _union([_compile(branch, named) for branch in schema], schema)
    if isinstance(schema, str):
        if schema in named:
            return lambda value, path: named[schema](value, path)
        return _primitive(schema)
    logical = _logical(schema.get("logicalType"))
    return logical or _complex(schema, named)


def _logical(logical: str | None) -> Check | None:
    """Logical types take their Python form (fastavro converts) or the underlying value."""
    if logical in ("timestamp-millis", "timestamp-micros"):
        return _one_of((datetime, int), f"{logical} (datetime or int)")
    if logical == "date":
        return _one_of((date, int), "date (date or int)")
    if logical == "uuid":
        return _one_of((str, UUID), "uuid (str)")
    return None


def _complex(schema: dict[str, Any], named: dict[str, Check]) -> Check:
    kind = schema["type"]
    if kind == "record" or kind == "error":
        return _record(schema, named)
    if kind == "enum":
        symbols = frozenset(schema["symbols"])
        named[schema["name"]] = enum = lambda value, path: None if isinstance(value, str) and value in symbols \
            else f"{path}: {value!r:.60} is not one of {schema['name']}'s symbols"
        return enum
    if kind == "array":
        items = _compile(schema["items"], named)
        return lambda value, path: _array(value, path, items)
    if kind == "map":
        values = _compile(schema["values"], named)
        return lambda value, path: _map(value, path, values)
    if kind == "fixed":
        size = schema["size"]
        named[schema["name"]] = fixed = lambda value, path: None if isinstance(value, bytes) and \
            len(value) == size else f"{path}: expected {size} bytes"
        return fixed
    return _compile(kind, named)


def _primitive(kind: str) -> Check:
    if kind == "null":
        return lambda value, path: None if value is None else f"{path}: expected null, got {type(value).__name__}"
    if kind == "boolean":
        return _one_of((bool,), "boolean")
    if kind in ("int", "long"):
        low, high = _INT32 if kind == "int" else _INT64
        return lambda value, path: None if isinstance(value, int) and not isinstance(value, bool) and \
            low <= value <= high else f"{path}: expected {kind}, got {type(value).__name__} {value!r:.40}"
    if kind in ("float", "double"):
        return lambda value, path: None if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            f"{path}: expected {kind}, got {type(value).__name__}"
    if kind == "string":
        return _one_of((str,), "string")
    if kind == "bytes":
        return _one_of((bytes, bytearray), "bytes")
    raise ValueError(f"unknown Avro type {kind!r}")


def _one_of(types: tuple[type, ...], name: str) -> Check:
    def check(value: Any, path: str) -> str | None:
        if isinstance(value, types) and not (isinstance(value, bool) and bool not in types):
            return None
        return f"{path}: expected {name}, got {type(value).__name__} {value!r:.40}"
    return check


def _union(branches: list[Check], schema: list[Any]) -> Check:
    def check(value: Any, path: str) -> str | None:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):  # (type name, value)
            value = value[1]
        for branch in branches:
            if branch(value, path) is None:
                return None
        names = [b if isinstance(b, str) else b.get("name", b.get("type")) for b in schema]
        return f"{path}: {type(value).__name__} {value!r:.40} matches none of {names}"
    return check


def _record(schema: dict[str, Any], named: dict[str, Check]) -> Check:
    fields: list[tuple[str, Check, bool]] = []

    def check(value: Any, path: str) -> str | None:
        if not isinstance(value, dict):
            return f"{path}: expected a record ({schema['name']}), got {type(value).__name__}"
        for name, field_check, has_default in fields:
            if name not in value:
                if has_default:
                    continue
                return f"{path}.{name}: missing"
            problem = field_check(value[name], f"{path}.{name}")
            if problem:
                return problem
        if len(value) > len(fields):
            unknown = sorted(set(value) - {name for name, _, _ in fields})
            if unknown:
                return f"{path}: unknown field(s) {', '.join(unknown)}"
        return None

    named[schema["name"]] = check  # before the fields: a record may refer to itself
    fields.extend((f["name"], _compile(f["type"], named), "default" in f) for f in schema["fields"])
    return check


def _array(value: Any, path: str, items: Check) -> str | None:
    if not isinstance(value, list):
        return f"{path}: expected array (list), got {type(value).__name__}"
    for i, item in enumerate(value):
        problem = items(item, f"{path}[{i}]")
        if problem:
            return problem
    return None


def _map(value: Any, path: str, values: Check) -> str | None:
    if not isinstance(value, dict):
        return f"{path}: expected map (dict), got {type(value).__name__}"
    for key, item in value.items():
        if not isinstance(key, str):
            return f"{path}: map keys must be strings"
        problem = values(item, f"{path}[{key!r}]")
        if problem:
            return problem
    return None
