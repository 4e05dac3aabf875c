import os
import secrets
from pathlib import Path

import pytest

# One audit signing key for the session, random each run: the processes a test starts and the
# stages it runs in-process sign and verify alike, whatever state directory each test uses.
os.environ.setdefault("MASH_AUDIT_SIGNING_KEY", secrets.token_urlsafe(48))

# The session's shared broker is plaintext (an explicit development setting; tests that start processes
# pass it on through the environment). tests/integration/test_kafka_security.py runs a secured broker.
os.environ.setdefault("MASH_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
