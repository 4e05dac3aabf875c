import os
import secrets
from pathlib import Path

import pytest

# One audit signing key for the session, random each run: the processes a test starts and the
# stages it runs in-process sign and verify alike, whatever state directory each test uses.
os.environ.setdefault("MASH_AUDIT_SIGNING_KEY", secrets.token_urlsafe(48))

# The bus is secured in tests as in a deployment (tests/support/bus.py): no MASH_KAFKA_* is set here.

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
