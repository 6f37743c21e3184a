"""Migration 0008 on both backends: members keep their rows, emails are unique per brand, downgrade works."""

import asyncio
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.db import Database, create_engine
from engine.schema import alembic_config, upgrade_sync
from tests.integration.test_ledger_migration import fresh_url  # noqa: F401 - fixture

NOW = datetime(2026, 2, 1, tzinfo=UTC)
_MEMBER = (
    "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, updated_at{extra}) "
    "VALUES (:b, :e, '', '', '{{}}', :now, :now{values})"
)


async def test_upgrade_keeps_members_email_unique_and_downgrade(fresh_url):  # noqa: F811
    upgrade_sync(fresh_url, "0007_outbox_delivered_to")
    db = Database(create_engine(fresh_url))
    try:
        async with db.write() as session:
            await session.execute(
                text("INSERT INTO brands (slug, name, timezone, config_version, settings, created_at) "
                     "VALUES ('old', 'Old', 'Europe/Rome', 1, '{}', :now)"),
                {"now": NOW},
            )  # fmt: skip
            brand_id = await session.scalar(text("SELECT id FROM brands WHERE slug = 'old'"))
            await session.execute(text(_MEMBER.format(extra="", values="")), {"b": brand_id, "e": "m", "now": NOW})
        upgrade_sync(fresh_url)
        async with db.read() as session:
            row = (await session.execute(text("SELECT email, joined_via FROM members WHERE external_id = 'm'"))).one()
        assert tuple(row) == (None, "")
        insert = text(_MEMBER.format(extra=", email", values=", :email"))
        async with db.write() as session:
            await session.execute(insert, {"b": brand_id, "e": "a", "now": NOW, "email": "x@example.com"})
            await session.execute(insert, {"b": brand_id, "e": "b", "now": NOW, "email": None})
        with pytest.raises(IntegrityError):
            async with db.write() as session:
                await session.execute(insert, {"b": brand_id, "e": "c", "now": NOW, "email": "x@example.com"})
    finally:
        await db.dispose()
    await asyncio.to_thread(command.downgrade, alembic_config(fresh_url), "0007_outbox_delivered_to")
    engine = create_engine(fresh_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa_inspect(c).get_table_names())
            columns = await connection.run_sync(lambda c: {col["name"] for col in sa_inspect(c).get_columns("members")})
    finally:
        await engine.dispose()
    assert "referrals" not in tables and "member_consents" not in tables
    assert "email" not in columns and "external_id" in columns
