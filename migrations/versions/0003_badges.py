"""badges: definitions, awards (unique per member, badge, level, instance), rule counters

Revision ID: 0003_badges
Revises: 0001_engine
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0003_badges"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("badges",)
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "badge_definitions",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("image", sa.Text(), nullable=False),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_badge_definitions_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_definitions")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_badge_definitions_brand_id_key")),
    )
    op.create_table(
        "badge_awards",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("badge_key", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("points", BIG_ID, nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=True),
        sa.Column("awarded_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=False),
        sa.Column("recipient_type", sa.String(length=16), nullable=False),
        sa.Column("recipient_hash", sa.String(length=80), nullable=False),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_badge_awards_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_badge_awards_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_badge_awards")),
        sa.UniqueConstraint("uid", name=op.f("uq_badge_awards_uid")),
        sa.UniqueConstraint(
            "brand_id",
            "member_id",
            "badge_key",
            "level",
            "instance",
            name=op.f("uq_badge_awards_brand_id_member_id_badge_key_level_instance"),
        ),
    )
    op.create_index("ix_badge_awards_badge", "badge_awards", ["brand_id", "badge_key"], unique=False)
    op.create_table(
        "badge_counters",
        sa.Column("brand_id", BIG_ID, nullable=False),
        sa.Column("member_id", BIG_ID, nullable=False),
        sa.Column("badge_key", sa.String(length=64), nullable=False),
        sa.Column("count", BIG_ID, nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_badge_counters_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_badge_counters_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("brand_id", "member_id", "badge_key", name=op.f("pk_badge_counters")),
    )


def downgrade() -> None:
    op.drop_table("badge_counters")
    op.drop_index("ix_badge_awards_badge", table_name="badge_awards")
    op.drop_table("badge_awards")
    op.drop_table("badge_definitions")
