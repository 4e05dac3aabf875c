"""The person index compares the first line of the address (issue 17): each profile keeps the
address line as words (`comparisons.normalise_address`), as part of its key (a child described at
a new home is a new description), and each blocking key's copy of a profile keeps it too. Profiles
filed before this have none: the comparison reads MISSING (no evidence either way) for them, and
the next event that describes the child with a line files a description with it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


KEY = ["person_id", "given", "family", "dob", "sex", "postcode"]


def _profiles(key: list[str]) -> sa.Table:
    """person_profiles with the address column and the given primary key (SQLite rebuilds the table)."""
    return sa.Table(
        "person_profiles", sa.MetaData(),
        *(sa.Column(name, sa.String(length=n), nullable=False) for name, n in
          (("person_id", 36), ("given", 64), ("family", 64), ("dob", 10), ("sex", 1), ("postcode", 8))),
        sa.Column("address", sa.String(length=160), nullable=False, server_default=""),
        sa.Column("first_event_id", sa.String(length=36), nullable=False),
        sa.Column("first_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="person_profiles_pkey"),
        sa.Index("ix_person_profiles_person", "person_id"),
    )


def upgrade() -> None:
    # A description now includes its address line: the same child at a new home is a new description.
    op.add_column("person_profiles", sa.Column("address", sa.String(length=160), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("person_profiles", copy_from=_profiles([*KEY, "address"]), recreate="always"):
            pass
    else:
        op.drop_constraint("person_profiles_pkey", "person_profiles", type_="primary")
        op.create_primary_key("person_profiles_pkey", "person_profiles", [*KEY, "address"])
    with op.batch_alter_table("person_block_keys") as batch:
        batch.add_column(sa.Column("address", sa.String(length=160), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("person_block_keys") as batch:
        batch.drop_column("address")
    # The older key holds one row per description whatever its line: keep one of each.
    op.execute("DELETE FROM person_profiles WHERE address <> (SELECT MIN(q.address) FROM person_profiles q "
               "WHERE q.person_id = person_profiles.person_id AND q.given = person_profiles.given "
               "AND q.family = person_profiles.family AND q.dob = person_profiles.dob "
               "AND q.sex = person_profiles.sex AND q.postcode = person_profiles.postcode)")
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("person_profiles", copy_from=_profiles(KEY), recreate="always") as batch:
            batch.drop_column("address")
    else:
        op.drop_constraint("person_profiles_pkey", "person_profiles", type_="primary")
        op.drop_column("person_profiles", "address")
        op.create_primary_key("person_profiles_pkey", "person_profiles", KEY)
