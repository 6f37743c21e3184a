"""rewards: catalog, stock counters, code pools, redemptions

Revision ID: 0006_rewards
Revises: 0006_points_lots
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0006_rewards"
down_revision: str | Sequence[str] | None = "0006_points_lots"
branch_labels: str | Sequence[str] | None = ("rewards",)
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _brand(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["brand_id"], ["brands.id"], name=op.f(f"fk_{table}_brand_id_brands"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "rewards",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _brand("rewards"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rewards")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_rewards_brand_id_key")),
    )
    op.create_table(
        "reward_stock",
        sa.Column("reward_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("total", BIG, nullable=True),
        sa.Column("issued", BIG, nullable=False),
        sa.CheckConstraint("issued >= 0", name=op.f("ck_reward_stock_issued_nonnegative")),
        sa.CheckConstraint("total IS NULL OR issued <= total", name=op.f("ck_reward_stock_within_total")),
        _brand("reward_stock"),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_stock_reward_id_rewards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("reward_id", name=op.f("pk_reward_stock")),
    )
    op.create_index(op.f("ix_reward_stock_brand_id"), "reward_stock", ["brand_id"], unique=False)
    op.create_table(
        "reward_codes",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("reward_id", BIG, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("generated", sa.Boolean(), nullable=False),
        sa.Column("redemption_id", BIG, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        _brand("reward_codes"),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_reward_codes_reward_id_rewards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reward_codes")),
        sa.UniqueConstraint("reward_id", "code", name=op.f("uq_reward_codes_reward_id_code")),
    )
    op.create_index(op.f("ix_reward_codes_brand_id"), "reward_codes", ["brand_id"], unique=False)
    op.create_index("ix_reward_codes_free", "reward_codes", ["reward_id", "status", "id"], unique=False)
    op.create_table(
        "redemptions",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=32), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("reward_id", BIG, nullable=False),
        sa.Column("reward_key", sa.String(length=64), nullable=False),
        sa.Column("name", JSON, nullable=False),
        sa.Column("cost", BIG, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("spend_entry_id", BIG, nullable=True),
        sa.Column("refund", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("used_at", WHEN, nullable=True),
        sa.Column("cancelled_at", WHEN, nullable=True),
        _brand("redemptions"),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_redemptions_member_id_members"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reward_id"], ["rewards.id"], name=op.f("fk_redemptions_reward_id_rewards"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("public_id", name=op.f("uq_redemptions_public_id")),
        sa.UniqueConstraint(
            "brand_id", "member_id", "idempotency_key", name=op.f("uq_redemptions_brand_id_member_id_idempotency_key")
        ),
    )
    op.create_index("ix_redemptions_brand_time", "redemptions", ["brand_id", "issued_at"], unique=False)
    op.create_index(
        "ix_redemptions_member_reward", "redemptions", ["member_id", "reward_id", "issued_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_redemptions_member_reward", table_name="redemptions")
    op.drop_index("ix_redemptions_brand_time", table_name="redemptions")
    op.drop_table("redemptions")
    op.drop_index("ix_reward_codes_free", table_name="reward_codes")
    op.drop_index(op.f("ix_reward_codes_brand_id"), table_name="reward_codes")
    op.drop_table("reward_codes")
    op.drop_index(op.f("ix_reward_stock_brand_id"), table_name="reward_stock")
    op.drop_table("reward_stock")
    op.drop_table("rewards")
