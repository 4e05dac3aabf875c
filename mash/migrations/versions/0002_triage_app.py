"""Triage and its app (session 4): alert scores, clocks, claims and decisions; the timeline of
shared events; users; decisions with their outbox; answers to possible matches.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_alert_actions_alert_id'), 'alert_actions', ['alert_id'], unique=False)
    op.create_table('timeline_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('event_type', sa.String(length=64), nullable=False),
    sa.Column('source_agency', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sensitivity', sa.String(length=24), nullable=False),
    sa.Column('consent', sa.String(length=24), nullable=False),
    sa.Column('policy_version', sa.String(length=64), nullable=False),
    sa.Column('audit_ref', sa.String(length=80), nullable=False),
    sa.Column('values', sa.Text(), nullable=False),
    sa.Column('views', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_timeline_person_time', 'timeline_events', ['person_id', 'occurred_at'], unique=False)
    op.create_table('triage_decisions',
    sa.Column('decision_id', sa.String(length=36), nullable=False),
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=False),
    sa.Column('decided_role', sa.String(length=24), nullable=False),
    sa.Column('rag_at_decision', sa.String(length=8), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('audit_ref', sa.String(length=80), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('decision_id')
    )
    op.create_index(op.f('ix_triage_decisions_alert_id'), 'triage_decisions', ['alert_id'], unique=False)
    op.create_index(op.f('ix_triage_decisions_published_at'), 'triage_decisions', ['published_at'], unique=False)
    op.create_table('users',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('sharing_role', sa.String(length=48), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )
    op.add_column('alerts', sa.Column('rag_rank', sa.Integer(), server_default=sa.text("'2'"), nullable=False))
    op.add_column('alerts', sa.Column('score', sa.Integer(), server_default=sa.text("'0'"), nullable=False))
    op.add_column('alerts', sa.Column('indicators', sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    op.add_column('alerts', sa.Column('scoring_version', sa.String(length=64), server_default=sa.text("''"), nullable=False))
    op.add_column('alerts', sa.Column('profile', sa.String(length=120), server_default=sa.text("''"), nullable=False))
    op.add_column('alerts', sa.Column('clock_started_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('alerts', sa.Column('at_risk_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('alerts', sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('alerts', sa.Column('claimed_by', sa.String(length=64), nullable=True))
    op.add_column('alerts', sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('alerts', sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('alerts', sa.Column('hub_rag', sa.String(length=8), nullable=True))
    op.add_column('alerts', sa.Column('rag_set_by', sa.String(length=64), nullable=True))
    op.add_column('alerts', sa.Column('rag_set_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f('ix_alerts_claimed_by'), 'alerts', ['claimed_by'], unique=False)
    op.create_index('ix_alerts_queue', 'alerts', ['status', 'decided_at', 'rag_rank', 'due_at'], unique=False)
    op.add_column('match_reviews', sa.Column('answered_by', sa.String(length=64), nullable=True))
    op.add_column('match_reviews', sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('match_reviews', sa.Column('answer_sent_at', sa.DateTime(timezone=True), nullable=True))

    op.execute("UPDATE alerts SET rag_rank = CASE rag WHEN 'RED' THEN 0 WHEN 'AMBER' THEN 1 ELSE 2 END")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
