"""wallet: brand wallet settings, members' Apple passes, devices registered for pass updates

Revision ID: 0012_wallet
Revises: 0001_engine
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0012_wallet"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("wallet",)
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
        "wallet_configs",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("wallet_configs", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("brand_id", "kind", name=op.f("pk_wallet_configs")),
    )
    op.create_table(
        "wallet_passes",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("updated_s", sa.BigInteger(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        _fk("wallet_passes", "brand_id", "brands"),
        _fk("wallet_passes", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_passes")),
        sa.UniqueConstraint("brand_id", "member_id", name=op.f("uq_wallet_passes_brand_id_member_id")),
        sa.UniqueConstraint("serial_number", name=op.f("uq_wallet_passes_serial_number")),
    )
    op.create_index(op.f("ix_wallet_passes_member_id"), "wallet_passes", ["member_id"])
    op.create_table(
        "wallet_registrations",
        sa.Column("device_library_identifier", sa.String(length=128), nullable=False),
        sa.Column("pass_id", BIG, nullable=False),
        sa.Column("pass_type_identifier", sa.String(length=128), nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("push_token", sa.String(length=256), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        _fk("wallet_registrations", "pass_id", "wallet_passes"),
        _fk("wallet_registrations", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("device_library_identifier", "pass_id", name=op.f("pk_wallet_registrations")),
    )
    op.create_index(
        "ix_wallet_registrations_device",
        "wallet_registrations",
        ["device_library_identifier", "pass_type_identifier"],
    )
    op.create_index(op.f("ix_wallet_registrations_brand_id"), "wallet_registrations", ["brand_id"])


def downgrade() -> None:
    for table in ("wallet_registrations", "wallet_passes", "wallet_configs"):
        op.drop_table(table)
