"""leagues: definitions, league periods, placements, members' divisions

Revision ID: 0012_leagues
Revises: 0001_engine
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0012_leagues"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("leagues",)
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
        "leagues",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("leagues", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leagues")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_leagues_brand_id_key")),
    )
    op.create_table(
        "league_periods",
        sa.Column("league_id", BIG, nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("closes_at", WHEN, nullable=False),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("placed", sa.Integer(), nullable=False),
        _fk("league_periods", "league_id", "leagues"),
        _fk("league_periods", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("league_id", "period", name=op.f("pk_league_periods")),
    )
    op.create_index("ix_league_periods_open", "league_periods", ["closed_at", "closes_at"])
    op.create_table(
        "league_placements",
        sa.Column("league_id", BIG, nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("division", sa.String(length=64), nullable=False),
        sa.Column("cohort", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("joined_at", WHEN, nullable=False),
        sa.Column("final_rank", sa.Integer(), nullable=True),
        sa.Column("final_value", sa.BigInteger(), nullable=True),
        sa.Column("zone", sa.String(length=16), nullable=True),
        _fk("league_placements", "league_id", "leagues"),
        _fk("league_placements", "member_id", "members"),
        _fk("league_placements", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("league_id", "period", "member_id", name=op.f("pk_league_placements")),
    )
    op.create_index("ix_league_placements_cohort", "league_placements", ["league_id", "period", "division", "cohort"])
    op.create_table(
        "league_members",
        sa.Column("league_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("division", sa.String(length=64), nullable=False),
        sa.Column("since", WHEN, nullable=False),
        _fk("league_members", "league_id", "leagues"),
        _fk("league_members", "member_id", "members"),
        _fk("league_members", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("league_id", "member_id", name=op.f("pk_league_members")),
    )


def downgrade() -> None:
    for table in ("league_members", "league_placements", "league_periods", "leagues"):
        op.drop_table(table)
