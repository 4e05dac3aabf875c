"""Set a principal's SCRAM-SHA-512 password on a running cluster: the step of rotating a service's Kafka
credentials without stopping the bus (docs/runbook.md, "Rotating a service's Kafka credentials").

The broker keeps one credential per principal and mechanism; a new password takes effect for new
connections at once, while connections already authenticated carry on. Runs as the operator.
"""

from __future__ import annotations

import secrets

from mash.kafka_acls import SERVICE_PRINCIPALS
from mash.kafka_security import MECHANISM, OPERATOR, credentials_dir, kafka_python_options, write_password
from mash.settings import Settings

MIN_PASSWORD_CHARS = 24


class CredentialError(ValueError):
    """A password the command will not set; the message says why."""


def set_password(bootstrap: str, settings: Settings, principal: str, password: str) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import UserScramCredentialUpsertion

    if principal not in SERVICE_PRINCIPALS:
        raise CredentialError(f"{principal!r} is not a service principal of the bus ({', '.join(SERVICE_PRINCIPALS)})")
    if len(password) < MIN_PASSWORD_CHARS or password != password.strip():
        raise CredentialError(f"a service's password is at least {MIN_PASSWORD_CHARS} characters with no surrounding "
                              "space: make one with `python -c 'import secrets; print(secrets.token_urlsafe(24))'`")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="mash-credentials",
                             **kafka_python_options(settings, OPERATOR))
    try:
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(principal, MECHANISM, password)])
    finally:
        admin.close()
    if errors.get(principal):
        raise CredentialError(f"the broker refused the new password for {principal}: {errors[principal]}")


def rotate_embedded(bootstrap: str, settings: Settings, principal: str) -> None:
    """The embedded stack's rotation: a fresh random password, set on the broker, then written where
    the principal's processes read it (they use it when they next connect)."""
    password = secrets.token_urlsafe(24)
    set_password(bootstrap, settings, principal, password)
    write_password(credentials_dir(settings), principal, password)
