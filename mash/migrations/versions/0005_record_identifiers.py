"""Corrected identifiers (issue 15): the person index keeps where each agency record stands (its
latest revision and person) and which identifiers that revision asserts, so a corrected NHS number
or UPN releases the wrong one instead of leaving it on the child. Audit entries are indexed by
record, so a revision's entry names the one it supersedes. A superseded timeline row remembers
which fields a later revision stopped sharing, and when, so the app says so in their place. The
outbox records why a message could never be sent.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'record_links',
        sa.Column('record_id', sa.String(length=36), primary_key=True),
        sa.Column('event_id', sa.String(length=36), nullable=False),
        sa.Column('revised_ms', sa.BigInteger(), nullable=False),
        sa.Column('person_id', sa.String(length=36), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
    )
    op.create_table(
        'record_identifiers',
        sa.Column('record_id', sa.String(length=36), primary_key=True),
        sa.Column('scheme', sa.String(length=32), primary_key=True),
        sa.Column('value', sa.String(length=128), primary_key=True),
    )
    op.create_index('ix_record_identifiers_identifier', 'record_identifiers', ['scheme', 'value'])
    # A plain ADD COLUMN, never a batch copy: the copy would drop the append-only triggers.
    op.add_column('audit_records', sa.Column('record_id', sa.String(length=36), nullable=True))
    op.create_index('ix_audit_records_record_id', 'audit_records', ['record_id'])
    _index_earlier_entries_by_record()
    op.add_column('timeline_events', sa.Column('withdrawn_fields', sa.JSON(), nullable=True))
    # The outbox records a message it can never encode, instead of retrying it ahead of every other.
    op.add_column('triage_decisions', sa.Column('send_error', sa.Text(), nullable=True))
    op.add_column('match_reviews', sa.Column('send_error', sa.Text(), nullable=True))


def _index_earlier_entries_by_record() -> None:
    """Entries sealed since 0004 name their record in their body: copy it to the new index column.
    The column is outside the hash (the body is what is sealed), so the chain still verifies; the
    append-only trigger is lifted for this statement only, by the migration's owner role."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        op.execute("UPDATE audit_records SET record_id = body::json->>'record_id' "
                   "WHERE record_id IS NULL AND body LIKE '%\"record_id\"%'")
        op.execute("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only")
        return
    op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
    op.execute("UPDATE audit_records SET record_id = json_extract(body, '$.record_id') "
               "WHERE record_id IS NULL AND body LIKE '%\"record_id\"%'")
    op.execute("CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
               "BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END")


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before upgrading")
