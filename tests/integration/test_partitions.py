"""Hash partitions of ``event_log`` and ``ledger`` on PostgreSQL (migration 0010, `questline db partitions`).

Each PostgreSQL test runs on a database of its own: splitting changes the schema.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from alembic import command
from click.testing import CliRunner
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine.clock import FrozenClock
from engine.db import Database, create_engine
from engine.errors import NotFound, ValidationError
from engine.partitions import ARCHIVE_SCHEMA, list_partitions, split
from engine.schema import alembic_config, upgrade_sync
from engine.settings import load_settings
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, _pg_admin, _unavailable
from tests.helpers import event, make_brand
from web.commands.db import schema_report

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
PROGRAM = {"earning_rules": [{"key": "visit", "event_type": "visit", "points": 5}]}


@pytest.fixture
def fresh_pg() -> Any:
    name = f"ql_part_{uuid.uuid4().hex[:8]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _unavailable("PostgreSQL", exc)
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar()


async def test_split_partitions_keep_rows_keys_and_exactly_once(fresh_pg):
    await asyncio.to_thread(upgrade_sync, fresh_pg)
    from web.app import create_app

    db = Database(create_engine(fresh_pg))
    clock = FrozenClock(NOW)
    settings = load_settings(
        {}, database_url=fresh_pg, redis_url="memory://", auto_migrate=False, secret=TEST_SECRET,
        event_max_future_seconds=60 * 86400,
    )  # fmt: skip
    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    app = create_app(settings, clock=clock, redis=redis, deliver_webhooks=False)
    try:
        keys = await make_brand(db, clock)
        other = await make_brand(db, clock)
        async with AsyncTestClient(app=app) as client:
            headers = keys.headers
            assert (await client.put("/v1/program", json=PROGRAM, headers=headers, params={"mode": "apply"})).is_success
            first = await client.post(
                "/v1/events", json=event("e1", "ada", "visit", "2026-11-20T09:00:00Z"), headers=headers
            )
            batch = [event(f"e{i}", "ada" if i % 2 else "bo", "visit", "2026-11-20T09:10:00Z") for i in range(2, 6)]
            assert (await client.post("/v1/events", json={"events": batch}, headers=headers)).is_success
            await client.post(
                "/v1/events", json=event("x1", "cy", "visit", "2026-11-20T09:00:00Z"), headers=other.headers
            )
            spend = {"points": -7, "reason": "correction"}  # consumes ada's lots: allocations onto ledger entries
            assert (await client.post("/v1/members/ada/points/adjustments", json=spend, headers=headers)).is_success

            before = await list_partitions(db)
            assert sorted({(p.table, p.modulus) for p in before}) == [("event_log", 8), ("ledger", 8)]
            assert len(before) == 16
            home = await _scalar(
                db, "SELECT DISTINCT tableoid::regclass::text FROM event_log WHERE brand_id = :b", b=keys.brand.id
            )
            created = await split(db, "event_log", name=home, archive=True, now=NOW)
            modulus8 = int(home.rsplit("_", 1)[1])
            assert created == [f"event_log_p16_{modulus8}", f"event_log_p16_{modulus8 + 8}"]
            assert len(await split(db, "ledger", name=None, archive=False, now=NOW)) == 16

            after = await list_partitions(db)
            assert {p.modulus for p in after if p.table == "ledger"} == {16}
            assert home not in {p.name for p in after}
            archived = await _scalar(
                db, "SELECT count(*) FROM pg_tables WHERE schemaname = :s AND tablename LIKE :n",
                s=ARCHIVE_SCHEMA, n=f"{home}_archived_%",
            )  # fmt: skip
            assert archived == 1
            counts = await _scalar(db, "SELECT count(*) FROM event_log WHERE brand_id = :b", b=keys.brand.id)
            assert counts == 5

            again = await client.post(
                "/v1/events", json=event("e1", "ada", "visit", "2026-11-20T09:00:00Z"), headers=headers
            )
            assert again.json()["duplicate"] is True and again.json()["effects"] == first.json()["effects"]
            fresh = await client.post(
                "/v1/events", json=event("e6", "ada", "visit", "2026-11-20T09:30:00Z"), headers=headers
            )
            assert fresh.json()["duplicate"] is False
            points = await client.get("/v1/members/ada/points", headers=headers)
            assert points.json()["balance"] == 4 * 5 - 7  # e1, e3, e5, e6 earned; the spend's allocations kept
        # the unique key still holds across the new partitions, and the keys onto ledger entries were re-added
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at,"
                        " properties, result) SELECT brand_id, event_key, member_id, type, occurred_at, received_at,"
                        " properties, result FROM event_log WHERE brand_id = :b AND event_key = 'e1'"
                    ),
                    {"b": keys.brand.id},
                )
        with pytest.raises(IntegrityError):
            async with db.engine.begin() as connection:
                await connection.execute(
                    text("INSERT INTO ledger_allocations (brand_id, entry_id, lot_id, points) VALUES (:b, -1, -2, 1)"),
                    {"b": keys.brand.id},
                )
        with pytest.raises(NotFound):
            await split(db, "ledger", name="ledger_p8_0", archive=False, now=NOW)
        report = await schema_report(fresh_pg)
        assert report.ok, report.describe()
    finally:
        await redis.aclose()
        await db.dispose()


def test_migration_converts_existing_rows_and_back(fresh_pg):
    upgrade_sync(fresh_pg, "0009_audit_review")

    async def seed() -> int:
        db = Database(create_engine(fresh_pg))
        try:
            brand = await make_brand(db, FrozenClock(NOW))
            async with db.engine.begin() as connection:
                member = (
                    await connection.execute(
                        text(
                            "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at,"
                            " updated_at, joined_via) VALUES (:b, 'ada', '', '', '{}', :t, :t, '') RETURNING id"
                        ),
                        {"b": brand.brand.id, "t": NOW},
                    )
                ).scalar_one()
                await connection.execute(
                    text(
                        "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at,"
                        " properties, result) VALUES (:b, 'old', :m, 'visit', :t, :t, '{}', '[]')"
                    ),
                    {"b": brand.brand.id, "m": member, "t": NOW},
                )
                lot = (
                    await connection.execute(
                        text(
                            "INSERT INTO ledger (brand_id, member_id, points, source, key, reason, occurred_at,"
                            " local_day, created_at, kind, available_at) VALUES (:b, :m, 10, 'rule', 'visit', '',"
                            " :t, '2026-11-20', :t, 'earn', :t) RETURNING id"
                        ),
                        {"b": brand.brand.id, "m": member, "t": NOW},
                    )
                ).scalar_one()
                spend = (
                    await connection.execute(
                        text(
                            "INSERT INTO ledger (brand_id, member_id, points, source, key, reason, occurred_at,"
                            " local_day, created_at, kind) VALUES (:b, :m, -4, 'adjustment', 'manual', 'x',"
                            " :t, '2026-11-20', :t, 'spend') RETURNING id"
                        ),
                        {"b": brand.brand.id, "m": member, "t": NOW},
                    )
                ).scalar_one()
                await connection.execute(
                    text("INSERT INTO ledger_allocations (brand_id, entry_id, lot_id, points) VALUES (:b, :s, :l, 4)"),
                    {"b": brand.brand.id, "s": spend, "l": lot},
                )
            return int(spend)
        finally:
            await db.dispose()

    async def shape() -> tuple[str, str, int, int, int]:
        db = Database(create_engine(fresh_pg))
        try:
            kinds = await _scalar(
                db, "SELECT string_agg(relkind::text, '' ORDER BY relname) FROM pg_class"
                " WHERE relname IN ('event_log', 'ledger')"
            )  # fmt: skip
            key = await _scalar(
                db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk_ledger_allocations_lot_id_ledger'"
            )  # fmt: skip
            events = await _scalar(db, "SELECT count(*) FROM event_log")
            entries = await _scalar(db, "SELECT count(*) FROM ledger")
            allocations = await _scalar(db, "SELECT count(*) FROM ledger_allocations")
            return kinds, key, events, entries, allocations
        finally:
            await db.dispose()

    last_id = asyncio.run(seed())
    upgrade_sync(fresh_pg, "0013_partitions")
    kinds, key, *rows = asyncio.run(shape())
    assert kinds == "pp" and "(lot_id, brand_id) REFERENCES ledger(id, brand_id)" in key
    assert rows == [1, 2, 1]

    async def next_ledger_id() -> int:
        db = Database(create_engine(fresh_pg))
        try:
            return int(await _scalar(db, "SELECT nextval('ledger_id_seq')"))
        finally:
            await db.dispose()

    assert asyncio.run(next_ledger_id()) > last_id  # the id sequence carried over
    command.downgrade(alembic_config(fresh_pg), "0009_audit_review")
    kinds, key, *rows = asyncio.run(shape())
    assert kinds == "rr" and key == "FOREIGN KEY (lot_id) REFERENCES ledger(id)"
    assert rows == [1, 2, 1]


async def test_sqlite_has_no_partitions(sqlite_url, monkeypatch):
    db = Database(create_engine(sqlite_url))
    try:
        with pytest.raises(ValidationError):
            await list_partitions(db)
    finally:
        await db.dispose()
    from web.cli import cli

    for name in [n for n in os.environ if n.startswith("QUESTLINE_")]:  # the command refuses unknown settings
        monkeypatch.delenv(name)
    monkeypatch.setenv("QUESTLINE_DATABASE_URL", sqlite_url)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["db", "partitions", "list"])
    assert result.exit_code == 1 and "PostgreSQL only" in result.output, result.output
