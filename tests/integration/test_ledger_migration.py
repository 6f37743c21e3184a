"""Migration 0006 on both backends: old ledger rows become lots and spends; an old overdraft is written off."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from engine.db import Database, create_engine
from engine.schema import upgrade_sync
from tests.conftest import PG_ADMIN_URL, _pg_admin

ROWS = [(100, "2026-01-01"), (-130, "2026-01-02"), (50, "2026-01-03"), (-20, "2026-01-04")]


@pytest.fixture
def fresh_url(backend, tmp_path):
    """An empty database of the current backend, dropped afterwards."""
    if backend.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    name = f"ql_mig_{uuid.uuid4().hex[:10]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        pytest.skip(f"PostgreSQL is not reachable ({exc!r})")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_backfill_makes_lots_spends_balances_and_writes_off_old_overdrafts(fresh_url):
    upgrade_sync(fresh_url, "0001_engine")
    db = Database(create_engine(fresh_url))
    now = datetime(2026, 2, 1, tzinfo=UTC)
    try:
        async with db.write() as session:
            await session.execute(
                text("INSERT INTO brands (slug, name, timezone, config_version, settings, created_at) "
                     "VALUES ('old', 'Old', 'Europe/Rome', 1, '{}', :now)"),
                {"now": now},
            )  # fmt: skip
            brand_id = await session.scalar(text("SELECT id FROM brands WHERE slug = 'old'"))
            await session.execute(
                text("INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, "
                     "updated_at) VALUES (:b, 'm', '', '', '{}', :now, :now)"),
                {"b": brand_id, "now": now},
            )  # fmt: skip
            member_id = await session.scalar(text("SELECT id FROM members WHERE external_id = 'm'"))
            for points, day in ROWS:
                at = datetime.fromisoformat(f"{day}T10:00:00+00:00")
                await session.execute(
                    text("INSERT INTO ledger (brand_id, member_id, points, source, key, reason, occurred_at, "
                         "local_day, created_at) VALUES (:b, :m, :p, 'adjustment', 'manual', '', :at, :d, :at)"),
                    {"b": brand_id, "m": member_id, "p": points, "at": at, "d": at.date()},
                )  # fmt: skip
    finally:
        await db.dispose()
    upgrade_sync(fresh_url)
    db = Database(create_engine(fresh_url))
    try:
        async with db.read() as session:
            kinds = (await session.execute(text("SELECT kind, points FROM ledger ORDER BY id"))).all()
            balance = (
                await session.execute(
                    text("SELECT available, pending, lifetime_earned, lifetime_spent FROM point_balances")
                )
            ).one()
            allocations = (
                await session.execute(text("SELECT lot_id, points FROM ledger_allocations ORDER BY id"))
            ).all()
            total = await session.scalar(text("SELECT SUM(points) FROM ledger"))
        assert [tuple(k) for k in kinds] == [
            ("earn", 100), ("spend", -130), ("earn", 50), ("spend", -20), ("writeoff", 30),
        ]  # fmt: skip
        assert tuple(balance) == (30, 0, 150, 120)
        assert [p for _, p in allocations] == [100, 20]
        assert total == 30  # the ledger still sums to the balance
        with pytest.raises(Exception, match="append-only"):
            async with db.write() as session:
                await session.execute(text("DELETE FROM ledger_allocations"))
    finally:
        await db.dispose()


async def test_downgrade_removes_lots_and_keeps_the_append_only_ledger(fresh_url):
    import asyncio

    from alembic import command

    from engine.schema import alembic_config

    upgrade_sync(fresh_url)
    await asyncio.to_thread(command.downgrade, alembic_config(fresh_url), "0001_engine")
    db = Database(create_engine(fresh_url))
    try:
        async with db.read() as session:
            tables = await session.run_sync(lambda s: sa_inspect(s.connection()).get_table_names())
            columns = await session.run_sync(
                lambda s: {c["name"] for c in sa_inspect(s.connection()).get_columns("ledger")}
            )
            if db.is_postgres:
                query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            triggers = set((await session.scalars(text(query))).all())
        assert "point_balances" not in tables and "rewards" not in tables and "ledger_allocations" not in tables
        assert "kind" not in columns and "lot_id" not in columns
        assert triggers == ({"ledger_append_only"} if db.is_postgres else {"ledger_no_update", "ledger_no_delete"})
    finally:
        await db.dispose()
    await asyncio.to_thread(upgrade_sync, fresh_url)
