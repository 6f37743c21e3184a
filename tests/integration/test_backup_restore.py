"""The backup procedure of docs/operations.md, end to end on PostgreSQL and Redis.

pg_dump a populated database (the demo brand: members, ledger and lots, challenges, badges, boards, rewards,
redemptions, tiers, segments, offers, a league), restore it into an empty database, rebuild the boards into
a fresh Redis namespace with `questline leaderboards rebuild`, and compare: every table row for row, ledger
balances, challenge progress, badge awards, board pages and the Redis sorted sets themselves.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner
from redis.asyncio import Redis
from sqlalchemy import func, select

from engine.clock import FrozenClock
from engine.db import Base
from engine.orm import LedgerRow, MemberRow
from engine.schema import upgrade_sync
from engine.settings import Settings, load_settings
from engine.tenants import get_brand
from tests.conftest import PG_ADMIN_URL, REDIS_URL, TEST_SECRET, _pg_admin, _unavailable
from web.cli import cli
from web.commands.db import TABLE_MODULES, schema_report

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
#: Tables of the domains added after the first release that the demo brand fills (lots, rewards, tiers, …).
NEWER_TABLES = (
    "ledger_allocations", "point_balances", "rewards", "reward_stock", "reward_codes", "redemptions",
    "tier_programs", "tier_counters", "member_tiers", "tier_history", "segments", "offers", "offer_members",
    "leagues", "outbox",
)  # fmt: skip


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture
def databases():
    """Two throw-away PostgreSQL databases: the original (migrated) and an empty one to restore into."""
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        _unavailable("pg_dump/pg_restore", FileNotFoundError("pg_dump"))
    names = [f"ql_backup_{uuid.uuid4().hex[:8]}", f"ql_restore_{uuid.uuid4().hex[:8]}"]
    try:
        for name in names:
            _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    urls = [f"{base}/{name}" for name in names]
    upgrade_sync(urls[0])
    yield urls
    for name in names:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def namespaces():
    """Two Redis key namespaces (original, restored), deleted afterwards."""
    pair = [f"qlbk{uuid.uuid4().hex[:8]}", f"qlrs{uuid.uuid4().hex[:8]}"]
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        _unavailable("Redis", exc)
    yield pair
    for namespace in pair:
        async for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            await client.delete(key)
    await client.aclose()


def _settings(url: str, namespace: str) -> Settings:
    return load_settings(
        {}, database_url=url, redis_url=REDIS_URL, redis_namespace=namespace, auto_migrate=False, secret=TEST_SECRET
    )


async def _snapshot(settings: Settings) -> dict[str, Any]:
    """Everything that must survive: all rows, balances, progress, awards, board pages, Redis boards."""
    import importlib

    from web.demo import DEMO_SLUG
    from web.wiring import open_services

    for module in TABLE_MODULES:
        importlib.import_module(module)
    snap: dict[str, Any] = {}
    async with open_services(settings, clock=FrozenClock(AT), migrate=False) as services:
        async with services.db.read() as session:
            for table in Base.metadata.sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                snap[f"table:{table.name}"] = [
                    tuple(r) for r in (await session.execute(select(table).order_by(*order)))
                ]
            balances = await session.execute(
                select(MemberRow.external_id, func.sum(LedgerRow.points))
                .join(MemberRow, MemberRow.id == LedgerRow.member_id)
                .group_by(MemberRow.external_id)
                .order_by(MemberRow.external_id)
            )
            snap["balances"] = [tuple(r) for r in balances]
            brand = await get_brand(session, DEMO_SLUG)
        pages = {}
        for board in await services.leaderboards.boards(brand):
            scope = "milano-centro" if board.scope else None
            page = await services.leaderboards.read(brand, board.key, scope=scope, limit=50)
            assert page.source == "redis", (board.key, page.source)  # answered from the (rebuilt) Redis
            pages[board.key] = msgspec.to_builtins(page.entries)
        snap["boards"] = pages
        redis_boards = {}
        prefix = f"{settings.redis_namespace}:lb:"
        async for key in services.redis.scan_iter(match=f"{prefix}*", count=1000):
            name = key.decode()
            if await services.redis.type(key) == b"zset":
                redis_boards[name.removeprefix(prefix)] = await services.redis.zrange(key, 0, -1, withscores=True)
        snap["redis"] = redis_boards
    return snap


def _run(*args: str, **env: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={f"QUESTLINE_{k.upper()}": v for k, v in env.items()})


async def test_dump_restore_rebuild_loses_nothing(databases, namespaces, tmp_path):
    from web.demo import ensure_demo
    from web.wiring import open_services

    source_url, restored_url = databases
    source, restored = _settings(source_url, namespaces[0]), _settings(restored_url, namespaces[1])
    async with open_services(source, clock=FrozenClock(AT), migrate=False) as services:
        assert await ensure_demo(services)
        await services.leaderboards.rebuild()  # the original Redis as a running server keeps it
    before = await asyncio.to_thread(lambda: asyncio.run(_snapshot(source)))
    assert len(before["balances"]) >= 10 and before["table:badge_awards"] and before["table:challenge_member_states"]
    assert before["boards"]["weekly-points"] and before["redis"]
    # the newer domains too: the row-for-row comparison below proves each of these tables survives
    empty = [table for table in NEWER_TABLES if not before[f"table:{table}"]]
    assert not empty, empty

    # 1. back up (custom format), 2. restore into an empty database
    dump = tmp_path / "questline.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", _libpq(source_url)], check=True, timeout=60)
    subprocess.run(
        ["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={_libpq(restored_url)}", str(dump)],
        check=True,
        timeout=60,
    )
    # 3. the restored schema matches the code
    report = await schema_report(restored_url)
    assert report.ok, report.describe()
    # 4. rebuild the boards into an empty Redis (here: a new namespace), as the runbook says
    rebuilt = await asyncio.to_thread(
        _run, "leaderboards", "rebuild", database_url=restored_url, redis_url=REDIS_URL, redis_namespace=namespaces[1]
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt 1 brand(s), 3 board(s)" in rebuilt.output

    after = await asyncio.to_thread(lambda: asyncio.run(_snapshot(restored)))
    assert after.keys() == before.keys()
    for part in before:
        assert after[part] == before[part], part
