"""integrations: source settings, event-name mappings, pending retractions, idempotency keys

Revision ID: 0011_integrations
Revises: 0007_outbox_delivered_to
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0011_integrations"
down_revision: str | Sequence[str] | None = "0007_outbox_delivered_to"
branch_labels: str | Sequence[str] | None = ("integrations",)
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _brand(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["brand_id"], ["brands.id"], name=op.f(f"fk_{table}_brand_id_brands"), ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create the four tables."""
    op.create_table(
        "integration_sources",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("secret", sa.String(255), nullable=False),
        sa.Column("shop_domain", sa.String(255), nullable=False),
        sa.Column("member_key", sa.String(32), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _brand("integration_sources"),
        sa.PrimaryKeyConstraint("brand_id", "platform", name=op.f("pk_integration_sources")),
    )
    op.create_table(
        "integration_mappings",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _brand("integration_mappings"),
        sa.PrimaryKeyConstraint("brand_id", "source", name=op.f("pk_integration_mappings")),
    )
    op.create_table(
        "pending_retractions",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("event_key", sa.String(255), nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("member", sa.String(255), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("request_key", sa.String(255), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        _brand("pending_retractions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_retractions")),
        sa.UniqueConstraint("brand_id", "request_key", name=op.f("uq_pending_retractions_brand_id_request_key")),
    )
    op.create_index(op.f("ix_pending_retractions_brand_id"), "pending_retractions", ["brand_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_headers", JSON, nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        _brand("idempotency_keys"),
        sa.PrimaryKeyConstraint("brand_id", "key", "method", "path", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_pending_retractions_brand_id"), table_name="pending_retractions")
    op.drop_table("pending_retractions")
    op.drop_table("integration_mappings")
    op.drop_table("integration_sources")
