"""A PostgreSQL restart costs the ingest path no failed event: it retries on a fresh connection.

Without the pool's per-checkout ping (``QUESTLINE_DATABASE_PRE_PING``, off by default), the first statement on
a connection the server dropped fails; the pipeline must retry it, exactly once in effect.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import pytest
from sqlalchemy import func, select

from engine.db import Database, create_engine
from engine.earning import EarningRuleSpec
from engine.events import Event
from engine.orm import LedgerRow
from engine.pipeline import Pipeline
from engine.points import PointsProcessor
from engine.rules_store import put_rule
from tests.helpers import make_brand

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend():
    return "postgres+redis"


def ev(event_id: str) -> Event:
    return Event(
        id=event_id, member="anna", type="visit", occurred_at=datetime.fromisoformat("2026-11-20T09:00:00+00:00"),
        properties={},
    )  # fmt: skip


async def _drop_connections(pg_url: str, application_name: str) -> int:
    """What a server restart does to a pool: every connection of ``application_name`` is closed server-side."""
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                application_name,
            )
        )
    finally:
        await admin.close()


async def test_events_after_the_pool_lost_its_connections_are_applied_exactly_once(pg_url, clock):
    name = f"questline-restart-{uuid.uuid4().hex[:8]}"
    db = Database(create_engine(pg_url, application_name=name, pre_ping=False))
    try:
        keys = await make_brand(db, clock)
        await put_rule(
            db, brand_id=keys.brand.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=10),
            now=clock.now(),
        )  # fmt: skip
        pipeline = Pipeline(db, processors=[PointsProcessor()], clock=clock)
        assert not (await pipeline.process(keys.brand, [ev("before")]))[0].duplicate
        assert await _drop_connections(pg_url, name) >= 1  # the pooled connection(s) are now dead
        after = await pipeline.process(keys.brand, [ev("after")])
        assert not after[0].duplicate and [getattr(e, "points", None) for e in after[0].effects][:1] == [10]
        again = await pipeline.process(keys.brand, [ev("after")])
        assert again[0].duplicate
        async with db.read() as session:
            rows = await session.scalar(
                select(func.count()).select_from(LedgerRow).where(LedgerRow.brand_id == keys.brand.id)
            )
        assert rows == 2
    finally:
        await db.dispose()
