"""leaderboards: definitions, per-period totals, periods, archives, display preferences

Revision ID: 0004_leaderboards
Revises: 0001_engine
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0004_leaderboards"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("leaderboards",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", _ID, autoincrement=True, nullable=False)


def _fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "leaderboards",
        _id(),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _fk("brand_id", "leaderboards", "brands"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboards")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_leaderboards_brand_id_key")),
    )
    op.create_table(
        "leaderboard_totals",
        _id(),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("board_id", _ID, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("reached_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _fk("brand_id", "leaderboard_totals", "brands"),
        _fk("board_id", "leaderboard_totals", "leaderboards"),
        _fk("member_id", "leaderboard_totals", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_totals")),
        sa.UniqueConstraint(
            "board_id",
            "period",
            "scope",
            "member_id",
            name=op.f("uq_leaderboard_totals_board_id_period_scope_member_id"),
        ),
    )
    op.create_index("ix_leaderboard_totals_member", "leaderboard_totals", ["brand_id", "member_id"], unique=False)
    op.create_index("ix_leaderboard_totals_updated", "leaderboard_totals", ["brand_id", "updated_at"], unique=False)
    op.create_table(
        "leaderboard_periods",
        _id(),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("board_id", _ID, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("starts_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("members", sa.Integer(), nullable=False),
        _fk("brand_id", "leaderboard_periods", "brands"),
        _fk("board_id", "leaderboard_periods", "leaderboards"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_periods")),
        sa.UniqueConstraint("board_id", "period", name=op.f("uq_leaderboard_periods_board_id_period")),
    )
    op.create_index("ix_leaderboard_periods_open", "leaderboard_periods", ["closed_at", "ends_at"], unique=False)
    op.create_table(
        "leaderboard_archive",
        _id(),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("board_id", _ID, nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("reached_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _fk("brand_id", "leaderboard_archive", "brands"),
        _fk("board_id", "leaderboard_archive", "leaderboards"),
        _fk("member_id", "leaderboard_archive", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_archive")),
        sa.UniqueConstraint(
            "board_id",
            "period",
            "scope",
            "member_id",
            name=op.f("uq_leaderboard_archive_board_id_period_scope_member_id"),
        ),
    )
    op.create_index(
        "ix_leaderboard_archive_position",
        "leaderboard_archive",
        ["board_id", "period", "scope", "position"],
        unique=False,
    )
    op.create_index("ix_leaderboard_archive_member", "leaderboard_archive", ["brand_id", "member_id"], unique=False)
    op.create_table(
        "leaderboard_preferences",
        _id(),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
        sa.Column("display", sa.String(length=16), nullable=False),
        sa.Column("pseudonym", sa.String(length=40), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _fk("brand_id", "leaderboard_preferences", "brands"),
        _fk("member_id", "leaderboard_preferences", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leaderboard_preferences")),
        sa.UniqueConstraint("brand_id", "member_id", name=op.f("uq_leaderboard_preferences_brand_id_member_id")),
    )


def downgrade() -> None:
    op.drop_table("leaderboard_preferences")
    op.drop_index("ix_leaderboard_archive_member", table_name="leaderboard_archive")
    op.drop_index("ix_leaderboard_archive_position", table_name="leaderboard_archive")
    op.drop_table("leaderboard_archive")
    op.drop_index("ix_leaderboard_periods_open", table_name="leaderboard_periods")
    op.drop_table("leaderboard_periods")
    op.drop_index("ix_leaderboard_totals_updated", table_name="leaderboard_totals")
    op.drop_index("ix_leaderboard_totals_member", table_name="leaderboard_totals")
    op.drop_table("leaderboard_totals")
    op.drop_table("leaderboards")
