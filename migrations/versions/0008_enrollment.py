"""engine: self-enrolment and referrals: members' email and source, consents, erasure requests, referrals.

Revision ID: 0008_enrollment
Revises: 0007_outbox_delivered_to
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_enrollment"
down_revision: str | Sequence[str] | None = "0007_outbox_delivered_to"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add ``members.email`` (unique per brand) and ``joined_via``, and the enrolment and referral tables."""
    # Plain ADD COLUMN and a unique index: a batch copy of ``members`` on SQLite would drop the table, which
    # its ledger rows (append-only, ON DELETE CASCADE) refuse.
    op.add_column("members", sa.Column("email", sa.String(320), nullable=True))
    op.add_column("members", sa.Column("joined_via", sa.String(100), nullable=False, server_default=""))
    op.create_index("uq_members_brand_email", "members", ["brand_id", "email"], unique=True)
    op.create_table(
        "member_consents",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
    )
    op.create_index("ix_member_consents_member", "member_consents", ["brand_id", "member_id"])
    op.create_table(
        "erasure_requests",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("completed_at", _TS, nullable=True),
    )
    op.create_index("ix_erasure_requests_brand", "erasure_requests", ["brand_id", "completed_at"])
    op.create_table(
        "referral_codes",
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "member_id"),
        sa.UniqueConstraint("brand_id", "code"),
    )
    op.create_table(
        "referrals",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("referrer_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("friend_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("qualified_at", _TS, nullable=True),
        sa.Column("paid_at", _TS, nullable=True),
        sa.UniqueConstraint("brand_id", "friend_id"),
    )
    op.create_index("ix_referrals_referrer", "referrals", ["brand_id", "referrer_id", "status"])
    op.create_table(
        "member_fingerprints",
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("brand_id", "member_id", "digest"),
    )
    op.create_index("ix_member_fingerprints_digest", "member_fingerprints", ["brand_id", "digest"])


def downgrade() -> None:
    """Drop the enrolment and referral tables and the members' new columns."""
    for table in ("member_fingerprints", "referrals", "referral_codes", "erasure_requests", "member_consents"):
        op.drop_table(table)
    op.drop_index("uq_members_brand_email", table_name="members")
    op.drop_column("members", "joined_via")  # SQLite >= 3.35 drops a column in place
    op.drop_column("members", "email")
