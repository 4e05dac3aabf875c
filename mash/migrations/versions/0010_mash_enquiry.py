"""The MASH enquiry (issue 18): `enquiries` (opened from an alert, with the consent decision and, once
closed, the threshold decision), `enquiry_subjects`, `information_requests` (one per agency asked,
with its clock and the agency's answer), and `users.agency` for partner agency accounts.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enquiries",
        sa.Column("enquiry_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("rag", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(length=48), nullable=False),
        sa.Column("consent", sa.String(length=24), nullable=False),
        sa.Column("consent_reason", sa.Text(), nullable=False),
        sa.Column("consent_authorised_by", sa.String(length=64), nullable=True),
        sa.Column("opened_by", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("audit_ref", sa.String(length=80), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_audit_ref", sa.String(length=80), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("referrer_agency", sa.String(length=32), nullable=True),
        sa.Column("referral_event_id", sa.String(length=36), nullable=True),
        sa.Column("feedback_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("enquiry_id"),
    )
    op.create_index(op.f("ix_enquiries_alert_id"), "enquiries", ["alert_id"], unique=False)
    op.create_index(op.f("ix_enquiries_referrer_agency"), "enquiries", ["referrer_agency"], unique=False)
    op.create_index(op.f("ix_enquiries_person_id"), "enquiries", ["person_id"], unique=False)
    op.create_table(
        "enquiry_subjects",
        sa.Column("enquiry_id", sa.String(length=36), nullable=False),
        sa.Column("person_id", sa.String(length=36), nullable=False),
        sa.Column("relation", sa.String(length=24), nullable=False),
        sa.Column("identity", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["enquiry_id"], ["enquiries.enquiry_id"]),
        sa.PrimaryKeyConstraint("enquiry_id", "person_id"),
    )
    op.create_table(
        "information_requests",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("enquiry_id", sa.String(length=36), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=False),
        sa.Column("sharing_role", sa.String(length=48), nullable=False),
        sa.Column("prompts", sa.JSON(), nullable=False),
        sa.Column("shared", sa.JSON(), nullable=False),
        sa.Column("rag", sa.String(length=8), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at_risk_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("audit_ref", sa.String(length=80), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("declined_reason", sa.Text(), nullable=True),
        sa.Column("searched_on", sa.Date(), nullable=True),
        sa.Column("systems_searched", sa.JSON(), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer_audit_ref", sa.String(length=80), nullable=True),
        sa.Column("views", sa.JSON(), nullable=True),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["enquiry_id"], ["enquiries.enquiry_id"]),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index(op.f("ix_information_requests_enquiry_id"), "information_requests", ["enquiry_id"],
                    unique=False)
    op.create_index("ix_information_requests_open", "information_requests", ["agency", "answered_at", "due_at"],
                    unique=False)
    with op.batch_alter_table("users") as batch:  # users has no triggers: a batch copy on SQLite is safe
        batch.add_column(sa.Column("agency", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("agency")
    op.drop_index("ix_information_requests_open", table_name="information_requests")
    op.drop_index(op.f("ix_information_requests_enquiry_id"), table_name="information_requests")
    op.drop_table("information_requests")
    op.drop_table("enquiry_subjects")
    op.drop_index(op.f("ix_enquiries_person_id"), table_name="enquiries")
    op.drop_index(op.f("ix_enquiries_referrer_agency"), table_name="enquiries")
    op.drop_index(op.f("ix_enquiries_alert_id"), table_name="enquiries")
    op.drop_table("enquiries")
