"""Alembic migrations of the hub's database: every schema change is a revision here, so an existing
database (SQLite or PostgreSQL) is upgraded in place, never recreated."""
