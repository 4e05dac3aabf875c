"""Avro single-object encoding: every message names its writer's schema by fingerprint.

Layout (Avro specification, "Single-object encoding"): the marker C3 01, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form, then the Avro
binary body. A reader looks the fingerprint up in the catalogue and resolves the writer's schema
to its own, so old messages stay readable after a compatible schema change.
"""

from __future__ import annotations

import io
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from mash.schema_catalogue import SchemaCatalogue, SchemaVersion, default_catalogue
from mash.validator import Check, compile_schema

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8
MAX_MESSAGE_BYTES = 1_000_000  # matches the broker's default message.max.bytes


class CodecError(ValueError):
    """A message cannot be encoded or decoded; the message says which and why."""


class Codec:
    def __init__(self, catalogue: SchemaCatalogue | None = None) -> None:
        self.catalogue = catalogue or default_catalogue()
        self._checks: dict[bytes, Check] = {}
        self._splits: dict[bytes, tuple[Any, Any]] = {}

    def _check(self, schema: SchemaVersion) -> Check:
        check = self._checks.get(schema.fingerprint)
        if check is None:
            check = self._checks[schema.fingerprint] = compile_schema(schema.expanded)
        return check

    def encode(self, record: dict[str, Any], schema_name: str, *, check_types: bool = True) -> bytes:
        """Encode with the latest version of `schema_name` and its header.

        fastavro's writer coerces some wrong types (e.g. "yes" for a boolean), so input from
        outside is checked first (mash.validator). `check_types=False` skips that for records
        the hub rebuilt from events it already decoded; the strict writer still refuses a field
        the schema does not know.
        """
        schema = self.catalogue.latest(schema_name)
        problem = self._check(schema)(record, "$") if check_types else None
        if problem:
            raise CodecError(f"record does not match {schema_name} v{schema.version}: {problem[:600]}")
        try:
            buf = io.BytesIO()
            buf.write(MAGIC)
            buf.write(schema.fingerprint)
            # strict: a field the schema does not know is an error too, never silently dropped
            schemaless_writer(buf, schema.parsed, record, strict=True, strict_allow_default=True)
        except Exception as exc:  # ValueError/TypeError from the writer
            raise CodecError(f"record does not match {schema_name} v{schema.version}: "
                             f"{str(exc)[:600]}") from exc
        data = buf.getvalue()
        if len(data) > MAX_MESSAGE_BYTES:
            raise CodecError(f"encoded {schema_name} is {len(data)} bytes; the limit is "
                             f"{MAX_MESSAGE_BYTES}")
        return data

    def encode_last_field(self, value: Any, schema_name: str) -> bytes:
        """The Avro binary form of the last field of `schema_name`'s latest version, for
        `encode_with_last_field`."""
        buf = io.BytesIO()
        schemaless_writer(buf, self._split(schema_name)[1], {"last": value}, strict=True)
        return buf.getvalue()

    def encode_with_last_field(self, record: dict[str, Any], schema_name: str, last: bytes) -> bytes:
        """Encode a record (from the hub, typed) whose last field was encoded beforehand.

        Avro's binary form of a record is its fields' forms one after another, so a field value
        many messages repeat (a list of per-role views shared by every event decided alike) can
        be written once and its bytes reused. The result is byte for byte what `encode` gives.
        """
        schema = self.catalogue.latest(schema_name)
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        try:
            schemaless_writer(buf, self._split(schema_name)[0], record, strict=True, strict_allow_default=True)
        except Exception as exc:  # ValueError/TypeError from the writer
            raise CodecError(f"record does not match {schema_name} v{schema.version}: {str(exc)[:600]}") from exc
        buf.write(last)
        return buf.getvalue()

    def _split(self, schema_name: str) -> tuple[Any, Any]:
        """The latest schema without its last field, and a record of that field alone."""
        schema = self.catalogue.latest(schema_name)
        split = self._splits.get(schema.fingerprint)
        if split is None:
            expanded = schema.expanded
            *first, last = expanded["fields"]
            split = self._splits[schema.fingerprint] = (
                parse_schema({**expanded, "fields": first}, _write_hint=False),
                parse_schema({"type": "record", "name": "LastField", "namespace": "mash.codec",
                              "fields": [{**last, "name": "last"}]}, _write_hint=False))
        return split

    def decode(self, data: bytes, reader_name: str | None = None) -> tuple[dict[str, Any], SchemaVersion]:
        """Decode `data`; with `reader_name`, resolve to that schema's latest version."""
        writer = self.writer_of(data)
        reader = self.catalogue.latest(reader_name) if reader_name else writer
        if reader_name and reader.name != writer.name:
            raise CodecError(f"expected {reader_name}, the message holds {writer.name}")
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            # the same version: no resolution to do (fastavro would still walk both schemas)
            record = schemaless_reader(buf, writer.reading, None if reader is writer else reader.reading)
        except Exception as exc:  # fastavro raises a variety of errors on a corrupt body
            raise CodecError(f"corrupt {writer.name} v{writer.version} body: "
                             f"{type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise CodecError(f"{len(data) - buf.tell()} trailing bytes after the {writer.name} body")
        if not isinstance(record, dict):
            raise CodecError(f"{writer.name} did not decode to a record")
        return record, writer

    def writer_of(self, data: bytes) -> SchemaVersion:
        if len(data) < HEADER_SIZE or not data.startswith(MAGIC):
            raise CodecError("not an Avro single-object message (missing the C3 01 marker)")
        fp = bytes(data[len(MAGIC):HEADER_SIZE])
        writer = self.catalogue.by_fingerprint(fp)
        if writer is None:
            raise CodecError(f"unknown writer schema fingerprint {fp.hex()}: is this reader's "
                             "schemas/ older than the writer's?")
        return writer
