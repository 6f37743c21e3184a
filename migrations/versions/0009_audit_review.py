"""engine: the brand-side audit log and the events held by velocity limits for review.

Revision ID: 0009_audit_review
Revises: 0008_enrollment
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_audit_review"
down_revision: str | Sequence[str] | None = "0008_enrollment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Create ``audit_log`` and ``held_events``."""
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("details", _JSON, nullable=False),
    )
    op.create_index("ix_audit_log_brand", "audit_log", ["brand_id", "id"])
    op.create_table(
        "held_events",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("member_id", _ID, sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("brand_id", "event_key"),
    )
    op.create_index("ix_held_events_queue", "held_events", ["brand_id", "status", "id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_index("ix_held_events_queue", table_name="held_events")
    op.drop_table("held_events")
    op.drop_index("ix_audit_log_brand", table_name="audit_log")
    op.drop_table("audit_log")
