"""segments: segment definitions, offers with their budget counter, members' offer state and arms

Revision ID: 0012_segments
Revises: 0001_engine
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0012_segments"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("segments",)
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("segments", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("brand_id", "slug", name=op.f("pk_segments")),
    )
    op.create_table(
        "offers",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("budget", BIG, nullable=True),
        sa.Column("given", BIG, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint("budget IS NULL OR given <= budget", name=op.f("ck_offers_within_budget")),
        _fk("offers", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_offers_brand_id_key")),
    )
    op.create_table(
        "offer_members",
        sa.Column("offer_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("arm", sa.String(length=32), nullable=False),
        sa.Column("assigned_at", WHEN, nullable=False),
        sa.Column("activated_at", WHEN, nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("points", BIG, nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        _fk("offer_members", "offer_id", "offers"),
        _fk("offer_members", "member_id", "members"),
        _fk("offer_members", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("offer_id", "member_id", name=op.f("pk_offer_members")),
    )
    op.create_index("ix_offer_members_offer_arm", "offer_members", ["offer_id", "arm"])
    op.create_index(op.f("ix_offer_members_brand_id"), "offer_members", ["brand_id"])


def downgrade() -> None:
    for table in ("offer_members", "offers", "segments"):
        op.drop_table(table)
