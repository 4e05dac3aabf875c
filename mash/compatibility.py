"""BACKWARD compatibility of Avro schemas: can a reader on the new schema read old data?

Follows the Avro specification's schema resolution rules over expanded schemas (named types
inlined). Returns every problem found, each with the path to the field, so a schema author sees
them all at once.
"""

from __future__ import annotations

from typing import Any

_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
_NAMED = ("record", "error", "enum", "fixed")


def backward_problems(reader: Any, writer: Any) -> list[str]:
    """Problems that stop `reader` (the new schema) reading data written with `writer`."""
    problems: list[str] = []
    _check(reader, writer, "$", problems, set())
    return problems


def _type_of(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        inner = schema["type"]
        return _type_of(inner) if isinstance(inner, (dict, list)) else str(inner)
    return str(schema)


def _unwrap(schema: Any) -> Any:
    """{"type": "string", "logicalType": ...} reads like "string"; named types stay dicts."""
    if isinstance(schema, dict) and _type_of(schema) not in (*_NAMED, "array", "map"):
        return _type_of(schema)
    return schema


def _check(reader: Any, writer: Any, path: str, problems: list[str], seen: set[tuple[str, str]]) -> None:
    reader, writer = _unwrap(reader), _unwrap(writer)
    r_type, w_type = _type_of(reader), _type_of(writer)
    if w_type == "union":
        for i, branch in enumerate(writer):
            _check(reader, branch, f"{path}<{i}>", problems, seen)
    elif r_type == "union":
        if all(_probe(branch, writer) for branch in reader):
            problems.append(f"{path}: no branch of the reader's union reads the writer's {w_type}")
    elif r_type != w_type:
        if r_type not in _PROMOTIONS.get(w_type, set()):
            problems.append(f"{path}: reader has {r_type}, writer has {w_type}")
    elif r_type in _NAMED:
        _check_named(reader, writer, path, problems, seen)
    elif r_type == "array":
        _check(reader["items"], writer["items"], f"{path}[]", problems, seen)
    elif r_type == "map":
        _check(reader["values"], writer["values"], f"{path}{{}}", problems, seen)


def _check_named(reader: dict[str, Any], writer: dict[str, Any], path: str, problems: list[str],
                 seen: set[tuple[str, str]]) -> None:
    if not _same_name(reader, writer):
        problems.append(f"{path}: reader's {reader['name']} is not the writer's {writer['name']}")
        return
    key = (reader["name"], writer["name"])
    if key in seen:  # a recursive type already being checked
        return
    seen = seen | {key}
    kind = _type_of(reader)
    if kind in ("record", "error"):
        _check_record(reader, writer, path, problems, seen)
    elif kind == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            problems.append(f"{path}: reader's enum lacks {sorted(missing)} and has no default")
    elif reader["size"] != writer["size"]:  # fixed
        problems.append(f"{path}: fixed size {reader['size']} != {writer['size']}")


def _check_record(reader: dict[str, Any], writer: dict[str, Any], path: str,
                  problems: list[str], seen: set[tuple[str, str]]) -> None:
    written = {f["name"]: f for f in writer["fields"]}
    for field in reader["fields"]:
        names = [field["name"], *field.get("aliases", [])]
        source = next((written[n] for n in names if n in written), None)
        where = f"{path}.{field['name']}"
        if source is None:
            if "default" not in field:
                problems.append(f"{where}: new field without a default")
            continue
        _check(field["type"], source["type"], where, problems, seen)


def _same_name(reader: dict[str, Any], writer: dict[str, Any]) -> bool:
    def short(name: str) -> str:
        return name.rpartition(".")[2]

    aliases = {short(a) for a in reader.get("aliases", [])}
    return short(reader["name"]) == short(writer["name"]) or short(writer["name"]) in aliases


def _probe(reader: Any, writer: Any) -> list[str]:
    problems: list[str] = []
    _check(reader, writer, "", problems, set())
    return problems
