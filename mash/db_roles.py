"""Least privilege on PostgreSQL: the processes' role may read and write the hub's rows, but may
only read and append to the audit trail.

`mash db upgrade` runs as the schema owner and grants these after migrating; the processes
connect as the runtime role, which owns nothing, so it cannot UPDATE, DELETE or TRUNCATE an audit
record, drop or disable the append-only triggers, or alter any table. (SQLite, the embedded
default, has no roles: its triggers are the only guard, and the file's owner can rewrite it.)
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url

AUDIT_TABLES = ("audit_records", "audit_decision_sets")
READ_ONLY_TABLES = ("alembic_version", "audit_signing_began", "alerts_before_sealing", "merges_before_sealing",
                    "sealing_began")


def runtime_role(database_url: str, owner_url: str, configured: str = "") -> str | None:
    """The role to grant: as configured, else the processes' user when it is not the owner. The
    owner itself is refused: it could still drop the audit's guards whatever it was granted."""
    user, owner = make_url(database_url).username, make_url(owner_url).username
    if configured and configured == owner:
        raise ValueError(f"MASH_DATABASE_RUNTIME_ROLE is the schema owner ({owner}): the processes need a role "
                         "of their own that owns nothing")
    if configured:
        return configured
    return user if user and user != owner else None


def grant_runtime(connection: Connection, role: str) -> list[str]:
    """Grant `role` what the processes need and nothing more; the statements run."""
    quoted = connection.dialect.identifier_preparer.quote(role)
    tables = sorted(inspect(connection).get_table_names())
    rows = [t for t in tables if t not in AUDIT_TABLES and t not in READ_ONLY_TABLES]
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}",
        f"REVOKE CREATE ON SCHEMA public FROM {quoted}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        *(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_q(connection, t)} TO {quoted}" for t in rows),
        *(f"GRANT SELECT, INSERT ON {_q(connection, t)} TO {quoted}" for t in AUDIT_TABLES if t in tables),
        *(f"GRANT SELECT ON {_q(connection, t)} TO {quoted}" for t in READ_ONLY_TABLES if t in tables),
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    ]
    for statement in statements:
        connection.exec_driver_sql(statement)
    return statements


def _q(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)
