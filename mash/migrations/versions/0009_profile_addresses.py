"""The person index compares the first line of the address (issue 17): each profile, and each
blocking key's copy of it, keeps the address line as words (`comparisons.normalise_address`).
Profiles filed before this have none: the comparison reads MISSING (no evidence either way) until
the person is described again with one.

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


def upgrade() -> None:
    for table in ("person_profiles", "person_block_keys"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("address", sa.String(length=160), nullable=False, server_default=""))


def downgrade() -> None:
    for table in ("person_profiles", "person_block_keys"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("address")
