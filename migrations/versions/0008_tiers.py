"""tiers: program, per-member day counters, current tiers, history, once-only bonuses; members.tier

Revision ID: 0008_tiers
Revises: 0001_engine
Create Date: 2026-12-06

``members.tier`` is the computed tier the predicate view reads (``member.tier``); NULL means "none
computed", and the view then falls back to a ``tier`` attribute the brand wrote, so existing brands keep
working. When a brand defines its tiers, members whose ``tier`` attribute names a defined tier are
adopted into the tier tables (history change ``migrated``); see docs/tiers.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0008_tiers"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("tiers",)
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
    op.create_table(
        "tier_programs",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("tier_programs", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("brand_id", name=op.f("pk_tier_programs")),
    )
    op.create_table(
        "tier_counters",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        _fk("tier_counters", "member_id", "members"),
        _fk("tier_counters", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("member_id", "metric", "day", name=op.f("pk_tier_counters")),
    )
    op.create_index("ix_tier_counters_brand_metric_day", "tier_counters", ["brand_id", "metric", "day"])
    op.create_table(
        "member_tiers",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column("since", WHEN, nullable=False),
        sa.Column("review_at", WHEN, nullable=True),
        sa.Column("keep_until", WHEN, nullable=True),
        sa.Column("override_until", WHEN, nullable=True),
        sa.Column("override_reason", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk("member_tiers", "member_id", "members"),
        _fk("member_tiers", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_tiers")),
    )
    op.create_index("ix_member_tiers_brand_review", "member_tiers", ["brand_id", "review_at"])
    op.create_table(
        "tier_history",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=64), nullable=True),
        sa.Column("previous", sa.String(length=64), nullable=True),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=True),
        sa.Column("at", WHEN, nullable=False),
        _fk("tier_history", "member_id", "members"),
        _fk("tier_history", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tier_history")),
        sa.UniqueConstraint("member_id", "version", name=op.f("uq_tier_history_member_id_version")),
    )
    op.create_index("ix_tier_history_brand_at", "tier_history", ["brand_id", "at"])
    op.create_table(
        "tier_bonuses",
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("value", sa.String(length=64), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        _fk("tier_bonuses", "member_id", "members"),
        _fk("tier_bonuses", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("member_id", "kind", "period", name=op.f("pk_tier_bonuses")),
    )
    op.create_index(op.f("ix_tier_bonuses_brand_id"), "tier_bonuses", ["brand_id"])


def downgrade() -> None:
    for table in ("tier_bonuses", "tier_history", "member_tiers", "tier_counters", "tier_programs"):
        op.drop_table(table)
    with op.batch_alter_table("members") as batch:
        batch.drop_column("tier")
