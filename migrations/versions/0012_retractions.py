"""engine: retractions of events (refunds, deleted reviews) and the event log's retraction columns.

Revision ID: 0012_retractions
Revises: 0009_audit_review
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_retractions"
down_revision: str | Sequence[str] | None = "0009_audit_review"
branch_labels: str | Sequence[str] | None = ("retractions",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Create ``event_retractions``; add ``retracted_at`` and ``refunded`` to ``event_log`` (additive)."""
    op.create_table(
        "event_retractions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("request_key", sa.String(255), nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_to", sa.String(255), nullable=True),
        sa.Column("outcome", _JSON, nullable=False),
        sa.UniqueConstraint("brand_id", "request_key", name="uq_event_retractions_brand_id_request_key"),
    )
    op.create_index("ix_event_retractions_event", "event_retractions", ["brand_id", "event_key"])
    op.create_index("ix_event_retractions_status", "event_retractions", ["status", "brand_id"])
    op.add_column("event_log", sa.Column("retracted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("event_log", sa.Column("refunded", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    with op.batch_alter_table("event_log") as batch:
        batch.drop_column("refunded")
        batch.drop_column("retracted_at")
    op.drop_index("ix_event_retractions_status", table_name="event_retractions")
    op.drop_index("ix_event_retractions_event", table_name="event_retractions")
    op.drop_table("event_retractions")
