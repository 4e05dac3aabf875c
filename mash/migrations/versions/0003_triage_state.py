"""Triage state in SQL (issue 14): each person's correlation state, versioned, instead of a Faust
table; the hub's stages run as consumer groups of their own.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('triage_states',
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id')
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
