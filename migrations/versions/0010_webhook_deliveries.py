"""engine: the webhook delivery log, secret rotation with an overlap, throttled topics in the outbox.

Revision ID: 0010_webhook_deliveries
Revises: 0009_audit_review
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_webhook_deliveries"
down_revision: str | Sequence[str] | None = "0009_audit_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``webhook_deliveries``; add the previous secret to endpoints and a throttle key to the outbox."""
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("brand_id", _ID, sa.ForeignKey("brands.id", ondelete="CASCADE"), nullable=False),
        sa.Column("endpoint_id", _ID, sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("outbox_id", _ID, sa.ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("body_excerpt", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
    )
    op.create_index("ix_webhook_deliveries_brand_id", "webhook_deliveries", ["brand_id"])
    op.create_index("ix_webhook_deliveries_outbox_id", "webhook_deliveries", ["outbox_id"])
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["endpoint_id", "id"])
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("previous_secret", sa.String(100), nullable=False, server_default=""))
        batch.add_column(sa.Column("previous_secret_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("throttle_key", sa.String(300), nullable=True))
    op.create_index("ix_outbox_throttle", "outbox", ["brand_id", "throttle_key", "created_at"])


def downgrade() -> None:
    """Drop the delivery log and the new columns."""
    op.drop_index("ix_outbox_throttle", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("throttle_key")
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
    op.drop_index("ix_webhook_deliveries_endpoint", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_outbox_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_brand_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
