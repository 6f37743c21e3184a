"""Migrations: every one from an empty database, from the released schema with data, and back down again.

Run on SQLite and PostgreSQL, each on a database of its own (never the session's shared one).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from litestar.testing import AsyncTestClient
from sqlalchemy import MetaData, inspect

from engine.db import create_engine
from engine.schema import alembic_config, upgrade_sync
from engine.settings import load_settings
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, _pg_admin, _unavailable
from tests.helpers import event
from web.commands.db import schema_report

#: The schema of the last release (0.1.0): its heads. Data written by that release must survive an upgrade.
RELEASED = ("0003_badges", "0004_leaderboards", "0005_challenge_state_lz4")
KEY = "sk_test_migration_" + "k" * 24
AT = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def fresh_url(backend, tmp_path):
    """An empty database of the backend, dropped afterwards."""
    if backend.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"ql_migrate_{uuid.uuid4().hex[:8]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _revisions_in_order(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_every_migration_applies_in_order_from_empty(fresh_url):
    revisions = _revisions_in_order(fresh_url)
    assert revisions[0] == "0001_engine" and set(RELEASED) <= set(revisions)
    for revision in revisions:
        upgrade_sync(fresh_url, revision)
    report = asyncio.run(schema_report(fresh_url))
    assert report.ok, report.describe()


def test_downgrade_to_empty_and_upgrade_again(fresh_url):
    upgrade_sync(fresh_url, "heads")
    command.downgrade(alembic_config(fresh_url), "base")
    assert _tables(fresh_url) <= {"alembic_version"}
    upgrade_sync(fresh_url, "heads")
    report = asyncio.run(schema_report(fresh_url))
    assert report.ok, report.describe()


def _tables(url: str) -> set[str]:
    async def names() -> set[str]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(names())


async def _write_released_data(url: str) -> None:
    """Rows as release 0.1.0 wrote them, through the tables as they are in the database (not today's ORM)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            meta = MetaData()
            await conn.run_sync(meta.reflect)
            t = meta.tables
            brand = (
                await conn.execute(
                    t["brands"].insert().returning(t["brands"].c.id),
                    {"slug": "released", "name": "Released", "timezone": "Europe/Rome", "config_version": 1}
                    | {"settings": {}, "created_at": AT},
                )
            ).scalar_one()
            key = {"brand_id": brand, "kind": "secret", "prefix": KEY[:12], "label": "", "created_at": AT}
            await conn.execute(t["api_keys"].insert(), key | {"key_hash": hashlib.sha256(KEY.encode()).hexdigest()})
            member = {"brand_id": brand, "display_name": "Ada", "locale": "it", "attributes": {}}
            member_id = (
                await conn.execute(
                    t["members"].insert().returning(t["members"].c.id),
                    member | {"external_id": "ada", "created_at": AT, "updated_at": AT},
                )
            ).scalar_one()
            effects = [{"type": "points_awarded", "points": 20, "source": "rule", "key": "visit"}]
            await conn.execute(
                t["event_log"].insert(),
                {"brand_id": brand, "event_key": "old-1", "member_id": member_id, "type": "visit"}
                | {"occurred_at": AT, "received_at": AT, "properties": {}, "result": msgspec.json.encode(effects)},
            )
            entry = {"brand_id": brand, "member_id": member_id, "source": "rule", "key": "visit", "reason": ""}
            day = {"occurred_at": AT, "local_day": date(2026, 11, 1), "created_at": AT}
            await conn.execute(
                t["ledger"].insert(),
                [entry | day | {"event_key": "old-1", "points": 20}, entry | day | {"event_key": None, "points": 15}],
            )
    finally:
        await engine.dispose()


async def test_upgrade_from_the_released_schema_keeps_data(fresh_url, clock):
    from web.app import create_app

    for revision in RELEASED:
        await asyncio.to_thread(upgrade_sync, fresh_url, revision)
    await _write_released_data(fresh_url)
    await asyncio.to_thread(upgrade_sync, fresh_url, "heads")
    assert (await schema_report(fresh_url)).ok

    settings = load_settings({}, database_url=fresh_url, redis_url="memory://", auto_migrate=False, secret=TEST_SECRET)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with AsyncTestClient(app=create_app(settings, clock=clock, deliver_webhooks=False)) as client:
        points = await client.get("/v1/members/ada/points", headers=headers)
        assert points.status_code == 200, points.text
        assert points.json()["balance"] == 35
        again = await client.post(
            "/v1/events", json=event("old-1", "ada", "visit", "2026-11-01T09:00:00Z"), headers=headers
        )
        assert again.status_code == 200 and again.json()["duplicate"] is True  # the released event log still counts
        assert again.json()["effects"][0]["points"] == 20
        new = await client.post(
            "/v1/events", json=event("new-1", "ada", "visit", "2026-11-20T09:00:00Z"), headers=headers
        )
        assert new.status_code == 200 and new.json()["duplicate"] is False


def test_every_migration_has_its_row_in_the_upgrade_guide(tmp_path):
    """docs/operations.md says, per migration, what it does and whether it is safe while the previous release serves."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    rows = {
        match.group(1): match.group(2)
        for match in re.finditer(r"^\| `(\d{4}_[a-z0-9_]+)`[^|]*\|[^|]+\|[^|]+\| (.+) \|$", guide, re.MULTILINE)
    }
    revisions = _revisions_in_order(f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    assert sorted(rows) == sorted(revisions)
    for revision, safe in rows.items():
        assert safe.startswith(("yes", "**no**", "n/a")), (revision, safe)
