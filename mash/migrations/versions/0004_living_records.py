"""Living records (issue 15): every revision of an agency record links, is decided and is scored
as the same record; the timeline keeps each revision and which one superseded it; outcomes say
what kind of message each was; alerts carry a request to re-rate and the decided alert they
follow; a decision names the alert revision the person saw.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('link_decisions') as batch:
        batch.add_column(sa.Column('record_id', sa.String(length=36), nullable=True))
        batch.create_index('ix_link_decisions_record_id', ['record_id'])
    with op.batch_alter_table('timeline_events') as batch:
        batch.add_column(sa.Column('record_id', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('revision', sa.String(length=48), nullable=True))
        batch.add_column(sa.Column('revised_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('withdrawn', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('superseded_by', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_timeline_events_record_id', ['record_id'])
    with op.batch_alter_table('event_outcomes') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='NEW'))
        batch.add_column(sa.Column('record_id', sa.String(length=36), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('review', sa.Text(), nullable=True))
        batch.add_column(sa.Column('follows', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('joined', sa.JSON(), nullable=True))
    with op.batch_alter_table('triage_decisions') as batch:
        batch.add_column(sa.Column('alert_revision', sa.Integer(), nullable=True))
    # Before records lived, an event's id was its record's id (uuid5 of source system and record id).
    for table in ('link_decisions', 'timeline_events', 'event_outcomes'):
        op.execute(sa.text(f"UPDATE {table} SET record_id = event_id WHERE record_id IS NULL"))  # noqa: S608


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
