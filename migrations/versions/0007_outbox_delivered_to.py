"""engine: outbox messages remember which endpoints they reached, so a retry goes only to the others.

Revision ID: 0007_outbox_delivered_to
Revises: 0006_points_lots
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_outbox_delivered_to"
down_revision: str | Sequence[str] | None = "0006_points_lots"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``outbox.delivered_to`` (a JSON list of endpoint ids, empty for existing rows)."""
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column(
                "delivered_to",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    """Drop ``outbox.delivered_to``."""
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("delivered_to")
