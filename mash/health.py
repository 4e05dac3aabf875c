"""Readiness checks every process's /readyz uses: does the broker answer, does the database."""

from __future__ import annotations

import socket

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when at least one bootstrap broker accepts a connection now (not a cached answer)."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        return False
