"""The Avro schemas under `schemas/`, loaded once and looked up by name or by fingerprint.

Files are named `<name>.v<N>.avsc`. Named types are shared across files: `common/` first (the
envelope), then the agencies, then the hub's own records, so a later file may refer to a type an
earlier one defined (e.g. every event refers to `uk.mash.Envelope`).

The common types have versions of their own. Every other schema is expanded once per common
version ("generation"): a message written when the envelope was v1 carries the fingerprint of
that expansion, and stays readable after the envelope moves to v2. The latest of a schema is its
highest version expanded with the newest common types.

An agency's payload has versions too, and the hub's records carry it inside them (an enriched
event holds the social care payload): the hub's schemas are expanded with every combination of
the agencies' versions, so a hub record written before an agency's new version keeps its
fingerprint and stays readable. The hub's latest is expanded with every agency's newest. (The
combinations multiply: fine for a few versions each; past that, record which were ever live.)
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro.schema import expand_schema, fingerprint, parse_schema, to_parsing_canonical_form

from mash.settings import PROJECT_ROOT

SCHEMAS_DIR = PROJECT_ROOT / "schemas"
LOAD_ORDER = ("common", "police", "health", "education", "social_care", "hub")
_FILE_NAME = re.compile(r"^(?P<stem>[a-z0-9_]+)\.v(?P<version>[0-9]+)\.avsc$")


class SchemaError(ValueError):
    """A schema file is missing, unparseable or misnamed."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one schema, in the forms the codec and the checks need."""

    name: str  # full Avro name, e.g. uk.mash.police.PublicProtectionNotification
    version: int
    path: Path
    generation: int  # the version of the common types (the envelope) it was expanded with
    parsed: Any = field(repr=False, compare=False)  # fastavro's parsed form, for writing
    reading: Any = field(repr=False, compare=False)  # the same, decoding uuids as plain strings
    expanded: Any = field(repr=False, compare=False)  # named references inlined
    fingerprint: bytes = field(repr=False)  # CRC-64-AVRO of the canonical form, little-endian


class SchemaCatalogue:
    def __init__(self, versions: list[SchemaVersion]) -> None:
        self._by_name: dict[str, list[SchemaVersion]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        for item in versions:
            self._by_name.setdefault(item.name, []).append(item)
            self._by_fingerprint[item.fingerprint] = item
        for family in self._by_name.values():
            family.sort(key=lambda v: (v.version, v.generation))

    def latest(self, name: str) -> SchemaVersion:
        try:
            return self._by_name[name][-1]
        except KeyError:
            raise SchemaError(f"no schema named {name!r} under {SCHEMAS_DIR}") from None

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(fp)

    def families(self) -> dict[str, list[SchemaVersion]]:
        """Every schema name with its versions (one per generation that changes it), oldest first."""
        return {name: list(versions) for name, versions in self._by_name.items()}


def load_catalogue(root: Path = SCHEMAS_DIR) -> SchemaCatalogue:
    common = sorted(((_version_of(p), p) for p in (root / LOAD_ORDER[0]).glob("*.avsc")), key=lambda vp: vp[0])
    generations = sorted({v for v, _ in common}) or [1]
    agencies: dict[tuple[str, str], list[Path]] = {}  # (folder, name) -> its versions, oldest first
    for folder in LOAD_ORDER[1:-1]:
        for path in sorted((root / folder).glob("*.avsc"), key=_order):
            agencies.setdefault((folder, _order(path)[0]), []).append(path)
    hub = sorted((root / LOAD_ORDER[-1]).glob("*.avsc"), key=_order)
    versions: dict[bytes, SchemaVersion] = {}

    def load(paths: Iterable[Path], named: dict[str, Any], named_reading: dict[str, Any], generation: int) -> None:
        for path in paths:
            item = _load_file(path, named, named_reading, generation)
            versions.setdefault(item.fingerprint, item)  # unchanged by this generation: keep the first

    for generation in generations:
        named: dict[str, Any] = {}
        named_reading: dict[str, Any] = {}
        for version, path in common:
            if version <= generation:
                item = _load_file(path, named, named_reading, generation=version)
                versions.setdefault(item.fingerprint, item)
        # The hub's records embed agency payloads. Which agency changed first is not known from the
        # files, so the hub is expanded with every combination of agency versions (a record written
        # between two agencies' changes stays readable whichever came first); the last combination
        # is every agency's newest, so it is the hub's latest.
        for chosen in itertools.product(*agencies.values()):
            scope, scope_reading = dict(named), dict(named_reading)
            load(chosen, scope, scope_reading, generation)
            load(hub, scope, scope_reading, generation)
    return SchemaCatalogue(list(versions.values()))


def _order(path: Path) -> tuple[str, int]:
    """A folder's files by name, each name's versions in number order (v10 after v9)."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise SchemaError(f"{path}: schema files are named <name>.v<N>.avsc")
    return match["stem"], int(match["version"])


def _version_of(path: Path) -> int:
    return _order(path)[1]


def _load_file(path: Path, named: dict[str, Any], named_reading: dict[str, Any], generation: int) -> SchemaVersion:
    version = _version_of(path)
    try:
        raw = json.loads(path.read_text())
        parsed = _parse_in_scope(raw, named)
        # fastavro decodes the uuid logical type to uuid.UUID; the hub passes ids on as text
        # (JSON state, SQL, headers). Canonical form ignores logical types: same fingerprint.
        reading = _parse_in_scope(_without_uuid_type(raw), named_reading)
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"{path}: {exc}") from exc
    expanded = expand_schema(parsed)
    canonical = to_parsing_canonical_form(expanded)
    return SchemaVersion(
        name=parsed["name"],
        version=version,
        path=path,
        generation=generation,
        parsed=parsed,
        reading=reading,
        expanded=expanded,
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


def _parse_in_scope(raw: Any, named: dict[str, Any]) -> Any:
    """Parse against every known type; a new version's own definitions replace older ones."""
    own = _defined_names(raw, "")
    scope = {k: v for k, v in named.items() if k not in own}
    parsed = parse_schema(raw, named_schemas=scope)
    named.update(scope)
    return parsed


def _without_uuid_type(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_uuid_type(item) for item in node]
    if isinstance(node, dict):
        if node.get("logicalType") == "uuid":
            return {k: v for k, v in node.items() if k != "logicalType"}
        return {k: _without_uuid_type(v) for k, v in node.items()}
    return node


def _defined_names(node: Any, namespace: str) -> set[str]:
    """Full names of the records, enums and fixeds a schema defines (not merely refers to)."""
    if isinstance(node, list):
        return set().union(*(_defined_names(item, namespace) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    names: set[str] = set()
    if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
        name = node["name"]
        full = name if "." in name else ".".join(p for p in (node.get("namespace", namespace), name) if p)
        names.add(full)
        namespace = full.rpartition(".")[0]
    for child in node.get("fields", []):
        names |= _defined_names(child.get("type"), namespace)
    for key in ("items", "values"):
        if key in node:
            names |= _defined_names(node[key], namespace)
    if isinstance(node.get("type"), (dict, list)):
        names |= _defined_names(node["type"], namespace)
    return names


@lru_cache(maxsize=1)
def default_catalogue() -> SchemaCatalogue:
    return load_catalogue()
