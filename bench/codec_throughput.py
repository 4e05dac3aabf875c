"""Codec throughput: our single-object codec against bare fastavro, in the same run.

The baseline is fastavro's schemaless writer and reader on the same records with no header,
no validation and no fingerprint lookup, so the ratio is the price of what the codec adds
(validation that rejects unknown fields and wrong types, the writer-schema header, resolution).

    .venv/bin/python bench/codec_throughput.py [--records 20000]
"""

from __future__ import annotations

import argparse
import io
import resource
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from mash.codec import Codec

SCHEMA = "uk.mash.health.EmergencyAttendance"


def event(i: int) -> dict[str, Any]:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    return {
        "envelope": {
            "event_id": str(uuid.UUID(int=i)), "event_type": "health.emergency_attendance",
            "source_agency": "HEALTH", "source_system": "ed-pas", "source_record_id": f"ED{i:07d}",
            "occurred_at": now, "received_at": now,
            "subject": {"local_id": f"RR8{i:06d}", "nhs_number": "9434765919", "nhs_number_status": "VALID",
                        "upn": None, "upn_status": "ABSENT",
                        "given_name": "Amelia", "family_name": "Hughes", "date_of_birth": date(2016, 4, 12),
                        "sex": "FEMALE", "address_line": None, "postcode": "LS6 2QT"},
            "sensitivity": "SPECIAL_CATEGORY", "consent": "NOT_SOUGHT",
            "record_id": str(uuid.uuid4()), "revision": "sha256:0", "revised_at": now, "withdrawn": False,
        },
        "payload": {"attendance_id": f"ED{i:07d}", "site_code": "RR801",
                    "presenting_complaint": "Head injury, fall down stairs", "safeguarding_concern": True,
                    "injury_pattern_concern": True, "maltreatment_alleged": False, "child_protection_flag": False,
                    "discharge_destination": "home"},
    }


def rate(label: str, n: int, fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - started
    print(f"  {label:36} {n / elapsed:>10,.0f} records/s  ({elapsed * 1e6 / n:6.1f} µs each)")
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    n = parser.parse_args().records
    codec = Codec()
    schema = codec.catalogue.latest(SCHEMA)
    records = [event(i) for i in range(n)]
    print(f"codec throughput over {n:,} {SCHEMA} records (avg "
          f"{sum(len(codec.encode(r, SCHEMA)) for r in records[:100]) // 100} bytes)")

    bare: list[bytes] = []

    def bare_encode() -> None:
        for record in records:
            buf = io.BytesIO()
            schemaless_writer(buf, schema.parsed, record)
            bare.append(buf.getvalue())

    ours: list[bytes] = []

    def our_encode() -> None:
        ours.extend(codec.encode(record, SCHEMA) for record in records)

    def our_encode_trusted() -> None:
        for record in records:
            codec.encode(record, SCHEMA, check_types=False)

    def bare_decode() -> None:
        for data in bare:
            schemaless_reader(io.BytesIO(data), schema.reading, schema.reading)

    def our_decode() -> None:
        for data in ours:
            codec.decode(data, SCHEMA)

    base_enc = rate("baseline: fastavro encode", n, bare_encode)
    our_enc = rate("mash codec encode (validated)", n, our_encode)
    trusted = rate("mash codec encode (hub, trusted)", n, our_encode_trusted)
    base_dec = rate("baseline: fastavro decode", n, bare_decode)
    our_dec = rate("mash codec decode (resolved)", n, our_decode)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ratio to baseline: encode {our_enc / base_enc:.2f}x (trusted {trusted / base_enc:.2f}x), "
          f"decode {our_dec / base_dec:.2f}x; peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
