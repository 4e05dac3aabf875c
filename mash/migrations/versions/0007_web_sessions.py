"""Server-side sessions and log-in back-off for the triage app (issue 16): `web_sessions` holds each
logged-in client by the SHA-256 of the random id in its cookie, so a session expires (idle and
absolute timeouts) and log-out or a password change ends it; `login_throttles` counts failed
log-ins per (username, address) and per address, each key backing off on its own, replacing the
per-account lock (`users.locked_until`) that let anyone lock a manager out.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_sessions',
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['username'], ['users.username']),
        sa.PrimaryKeyConstraint('id_hash'),
    )
    op.create_index(op.f('ix_web_sessions_username'), 'web_sessions', ['username'], unique=False)
    op.create_table(
        'login_throttles',
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('blocked_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('username', 'address'),
    )
    op.create_index(op.f('ix_login_throttles_last_failure_at'), 'login_throttles', ['last_failure_at'],
                    unique=False)
    with op.batch_alter_table('users') as batch:  # users has no triggers: a batch copy on SQLite is safe
        batch.drop_column('locked_until')


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
