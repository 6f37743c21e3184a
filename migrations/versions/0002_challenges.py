"""challenges: campaigns, challenges, member progress, completions, opt-ins, program versions

Revision ID: 0002_challenges
Revises: 0001_engine
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0002_challenges"
down_revision: str | Sequence[str] | None = "0001_engine"
branch_labels: str | Sequence[str] | None = ("challenges",)
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _brand_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["brand_id"], ["brands.id"], name=op.f(f"fk_{table}_brand_id_brands"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "challenge_campaigns",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("archived_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("challenge_campaigns"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge_campaigns")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_challenge_campaigns_brand_id_key")),
    )
    op.create_table(
        "challenges",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("live_since", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("backfilled_from", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("archived_at", engine.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("challenges"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["challenge_campaigns.id"],
            name=op.f("fk_challenges_campaign_id_challenge_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
        sa.UniqueConstraint("brand_id", "key", name=op.f("uq_challenges_brand_id_key")),
    )
    op.create_index(op.f("ix_challenges_campaign_id"), "challenges", ["campaign_id"], unique=False)
    op.create_table(
        "challenge_member_states",
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("challenge_member_states"),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_challenge_member_states_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("brand_id", "member_id", name=op.f("pk_challenge_member_states")),
    )
    op.create_table(
        "challenge_completions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("challenge_id", _ID, nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("instance", sa.String(length=16), nullable=False),
        sa.Column("completed_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("challenge_completions"),
        sa.ForeignKeyConstraint(
            ["challenge_id"],
            ["challenges.id"],
            name=op.f("fk_challenge_completions_challenge_id_challenges"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_challenge_completions_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge_completions")),
        sa.UniqueConstraint(
            "challenge_id",
            "member_id",
            "instance",
            name=op.f("uq_challenge_completions_challenge_id_member_id_instance"),
        ),
    )
    op.create_index(
        "ix_challenge_completions_brand_time", "challenge_completions", ["brand_id", "completed_at"], unique=False
    )
    op.create_table(
        "challenge_enrolments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("member_id", _ID, nullable=False),
        sa.Column("opted_in_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("challenge_enrolments"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["challenge_campaigns.id"],
            name=op.f("fk_challenge_enrolments_campaign_id_challenge_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_challenge_enrolments_member_id_members"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenge_enrolments")),
        sa.UniqueConstraint("campaign_id", "member_id", name=op.f("uq_challenge_enrolments_campaign_id_member_id")),
    )
    op.create_index(op.f("ix_challenge_enrolments_brand_id"), "challenge_enrolments", ["brand_id"], unique=False)
    op.create_table(
        "program_versions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("brand_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", _JSON, nullable=False),
        sa.Column("changes", _JSON, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", engine.db.UtcDateTime(timezone=True), nullable=False),
        _brand_fk("program_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_versions")),
        sa.UniqueConstraint("brand_id", "version", name=op.f("uq_program_versions_brand_id_version")),
    )


def downgrade() -> None:
    op.drop_table("program_versions")
    op.drop_index(op.f("ix_challenge_enrolments_brand_id"), table_name="challenge_enrolments")
    op.drop_table("challenge_enrolments")
    op.drop_index("ix_challenge_completions_brand_time", table_name="challenge_completions")
    op.drop_table("challenge_completions")
    op.drop_table("challenge_member_states")
    op.drop_index(op.f("ix_challenges_campaign_id"), table_name="challenges")
    op.drop_table("challenges")
    op.drop_table("challenge_campaigns")
