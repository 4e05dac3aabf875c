"""Signed audit entries (issue 16): every entry carries a keyed signature (HMAC-SHA256 with a key
from the environment, named by its key id) over its chain, sequence and hash, so an entry inserted
by a role that may append but does not hold the key is told apart from the writers' own. Entries
sealed before this revision carry none; `audit_signing_began` records each chain's last sequence
number then, so a verifier can tell an old unsigned entry from a new forged one (a chain's numbers
are unique, so nothing can be inserted at or below them). The runtime role may only read it.
The triage app's chain is published to the audit topic as well (`audit_topic_cursor`: how far).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch copy: the copy would drop the append-only triggers.
    op.add_column('audit_records', sa.Column('signature', sa.String(length=96), nullable=True))
    op.create_table(
        'audit_signing_began',
        sa.Column('chain', sa.String(length=64), primary_key=True),
        sa.Column('unsigned_through', sa.BigInteger(), nullable=False),
    )
    # The triage app's chain goes to the topic too: how far it has been published.
    op.create_table(
        'audit_topic_cursor',
        sa.Column('chain', sa.String(length=64), primary_key=True),
        sa.Column('seq', sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO audit_signing_began (chain, unsigned_through) "
               "SELECT chain, MAX(seq) FROM audit_records GROUP BY chain")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
