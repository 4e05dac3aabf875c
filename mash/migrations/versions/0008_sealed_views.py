"""What the pages show, sealed (issue 16): from here on the hub seals every alert revision it writes
and the app every line of an alert's history (claim, release, reassignment, re-rating, decision), so
`mash audit verify` checks the rows the pages read against the trail. Rows written before cannot be
checked; this revision records which they are, read-only to the runtime role, so that a row added
later without a seal is told apart from an old one: each alert at its current revision
(`alerts_before_sealing`), the last line of history (`sealing_began`), and the merges applied
(`merges_before_sealing`: whose timeline a retired child's events may be on; the hub seals those
it applies from here on).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alerts_before_sealing',
        sa.Column('alert_id', sa.String(length=36), primary_key=True),
        sa.Column('revision', sa.Integer(), nullable=False),
    )
    op.create_table(
        'merges_before_sealing',
        sa.Column('retired_person_id', sa.String(length=36), primary_key=True),
        sa.Column('surviving_person_id', sa.String(length=36), nullable=False),
    )
    op.create_table(
        'sealing_began',
        sa.Column('name', sa.String(length=64), primary_key=True),
        sa.Column('through', sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO alerts_before_sealing (alert_id, revision) SELECT alert_id, revision FROM alerts")
    op.execute("INSERT INTO merges_before_sealing (retired_person_id, surviving_person_id) "
               "SELECT retired_person_id, surviving_person_id FROM person_merges")
    op.execute("INSERT INTO sealing_began (name, through) SELECT 'alert_actions', COALESCE(MAX(id), 0) "
               "FROM alert_actions")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
