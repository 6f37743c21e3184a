"""notifications: the feed and email queue, members' choices, brands' templates, the outbox cursor

Revision ID: 0012_notifications
Revises: 0009_audit_review
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import engine.db

revision: str = "0012_notifications"
down_revision: str | Sequence[str] | None = "0009_audit_review"
branch_labels: str | Sequence[str] | None = ("notifications",)
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = engine.db.UtcDateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    """Create the four tables; the cursor starts at the newest outbox message (no feed from the past)."""
    op.create_table(
        "notifications",
        sa.Column("id", BIG, autoincrement=True, nullable=False),
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.Column("email_state", sa.String(12), nullable=False),
        sa.Column("email_due_at", WHEN, nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_error", sa.String(200), nullable=False),
        _fk("notifications", "brand_id", "brands"),
        _fk("notifications", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("brand_id", "member_id", "source", name=op.f("uq_notifications_brand_id_member_id_source")),
    )
    op.create_index("ix_notifications_feed", "notifications", ["brand_id", "member_id", "id"])
    op.create_index("ix_notifications_email", "notifications", ["email_state", "email_due_at"])
    op.create_table(
        "notification_choices",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("member_id", BIG, nullable=False),
        sa.Column("email_off", JSON, nullable=False),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("notification_choices", "brand_id", "brands"),
        _fk("notification_choices", "member_id", "members"),
        sa.PrimaryKeyConstraint("brand_id", "member_id", name=op.f("pk_notification_choices")),
    )
    op.create_table(
        "notification_templates",
        sa.Column("brand_id", BIG, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("notification_templates", "brand_id", "brands"),
        sa.PrimaryKeyConstraint("brand_id", "kind", "locale", name=op.f("pk_notification_templates")),
    )
    cursor = op.create_table(
        "notification_cursor",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_cursor")),
    )
    newest = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(id), 0) FROM outbox"))
    op.bulk_insert(cursor, [{"name": "outbox", "position": int(newest or 0)}])


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_table("notification_cursor")
    op.drop_table("notification_templates")
    op.drop_table("notification_choices")
    op.drop_index("ix_notifications_email", table_name="notifications")
    op.drop_index("ix_notifications_feed", table_name="notifications")
    op.drop_table("notifications")
