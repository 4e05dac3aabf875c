"""The schema as it stood before migrations existed (session 3): the person index, sharing's
append-only audit trail, alerts and outcomes. A database made then by create_all is stamped at this
revision and upgraded from it.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
APPEND_ONLY = "audit records are append-only"


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('alert_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('rag', sa.String(length=8), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('agencies', sa.JSON(), nullable=False),
    sa.Column('event_ids', sa.JSON(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('alert_id')
    )
    op.create_index(op.f('ix_alerts_person_id'), 'alerts', ['person_id'], unique=False)
    op.create_index(op.f('ix_alerts_rag'), 'alerts', ['rag'], unique=False)
    op.create_table('audit_decision_sets',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('digest')
    )
    op.create_table('audit_records',
    sa.Column('position', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('chain', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('decision_key', sa.String(length=160), nullable=False),
    sa.Column('decisions_digest', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('position'),
    sa.UniqueConstraint('chain', 'seq', name='uq_audit_chain_seq'),
    sa.UniqueConstraint('decision_key')
    )
    op.create_index(op.f('ix_audit_records_event_id'), 'audit_records', ['event_id'], unique=False)
    op.create_table('event_outcomes',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('source_agency', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('alert_id', sa.String(length=36), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_event_outcomes_outcome'), 'event_outcomes', ['outcome'], unique=False)
    op.create_index(op.f('ix_event_outcomes_person_id'), 'event_outcomes', ['person_id'], unique=False)
    op.create_table('link_decisions',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('model_version', sa.String(length=16), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_link_decisions_person_id'), 'link_decisions', ['person_id'], unique=False)
    op.create_table('match_models',
    sa.Column('version', sa.String(length=16), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('match_reviews',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('candidate_person_id', sa.String(length=36), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index(op.f('ix_match_reviews_candidate_person_id'), 'match_reviews', ['candidate_person_id'], unique=False)
    op.create_index(op.f('ix_match_reviews_person_id'), 'match_reviews', ['person_id'], unique=False)
    op.create_index(op.f('ix_match_reviews_status'), 'match_reviews', ['status'], unique=False)
    op.create_table('person_addresses',
    sa.Column('address_key', sa.String(length=160), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.PrimaryKeyConstraint('address_key', 'person_id')
    )
    op.create_index(op.f('ix_person_addresses_person_id'), 'person_addresses', ['person_id'], unique=False)
    op.create_table('person_block_keys',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('given', sa.String(length=64), nullable=False),
    sa.Column('family', sa.String(length=64), nullable=False),
    sa.Column('dob', sa.String(length=10), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('postcode', sa.String(length=8), nullable=False),
    sa.PrimaryKeyConstraint('key', 'person_id')
    )
    op.create_index(op.f('ix_person_block_keys_person_id'), 'person_block_keys', ['person_id'], unique=False)
    op.create_table('person_events',
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('agency', sa.String(length=16), nullable=False),
    sa.Column('occurred_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    op.create_index('ix_person_events_person_time', 'person_events', ['person_id', 'occurred_ms'], unique=False)
    op.create_table('person_merges',
    sa.Column('retired_person_id', sa.String(length=36), nullable=False),
    sa.Column('surviving_person_id', sa.String(length=36), nullable=False),
    sa.Column('event_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('merged_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('retired_person_id')
    )
    op.create_index(op.f('ix_person_merges_surviving_person_id'), 'person_merges', ['surviving_person_id'], unique=False)
    op.create_table('person_profiles',
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('given', sa.String(length=64), nullable=False),
    sa.Column('family', sa.String(length=64), nullable=False),
    sa.Column('dob', sa.String(length=10), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('postcode', sa.String(length=8), nullable=False),
    sa.Column('first_event_id', sa.String(length=36), nullable=False),
    sa.Column('first_seen_ms', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'given', 'family', 'dob', 'sex', 'postcode')
    )
    op.create_index('ix_person_profiles_person', 'person_profiles', ['person_id'], unique=False)
    op.create_table('persons',
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('merged_into', sa.String(length=36), nullable=True),
    sa.Column('open_social_care', sa.Boolean(), nullable=False),
    sa.Column('child_protection_plan', sa.Boolean(), nullable=False),
    sa.Column('looked_after', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('person_id')
    )
    op.create_index(op.f('ix_persons_merged_into'), 'persons', ['merged_into'], unique=False)
    op.create_table('person_identifiers',
    sa.Column('scheme', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=128), nullable=False),
    sa.Column('person_id', sa.String(length=36), nullable=False),
    sa.Column('first_seen_event_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['persons.person_id'], ),
    sa.PrimaryKeyConstraint('scheme', 'value')
    )
    op.create_index(op.f('ix_person_identifiers_person_id'), 'person_identifiers', ['person_id'], unique=False)

    _append_only(("audit_records", "audit_decision_sets"))


def _append_only(tables: tuple[str, ...]) -> None:
    """The database itself refuses to edit or delete an audit record."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$")
        for table in tables:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
        return
    for table in tables:
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")


def downgrade() -> None:
    raise NotImplementedError("the first schema has nothing to go back to")
