"""An optional read replica (QUESTLINE_DATABASE_READ_URL): statistics and exports read it, own data the primary.

The replica is simulated as PostgreSQL sees a lagging one: a copy of the primary taken at one moment
(``pg_dump | psql``), after which the primary moves on. Whatever reads the copy shows the older state.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from litestar.testing import AsyncTestClient

from engine.clock import FrozenClock
from engine.db import Database, create_engine
from engine.errors import ValidationError
from engine.schema import upgrade
from engine.settings import load_settings
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, _pg_admin
from tests.helpers import event, make_brand
from web.pages import stats

PROGRAM = {"earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}]}


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """A fresh primary and an empty database to hold the replica's copy (asyncpg URLs); dropped afterwards."""
    names = [f"ql_test_rr_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        for name in names:
            _pg_admin(f'CREATE DATABASE "{name}"')
    except OSError as exc:  # pragma: no cover - the service check in conftest makes this a failure under CI
        pytest.fail(f"PostgreSQL is not available: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    for name in names:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copy(source: str, target: str) -> None:
    """Make ``target`` a copy of ``source`` as it is now (the replica catching up to this moment)."""
    plain = [url.replace("postgresql+asyncpg://", "postgresql://", 1) for url in (source, target)]
    dump = subprocess.run(["pg_dump", "--no-owner", "-d", plain[0]], check=True, capture_output=True)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", plain[1]], input=dump.stdout, check=True,
                   capture_output=True)  # fmt: skip


def test_a_replica_must_be_postgresql_beside_a_postgresql_primary() -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings({}, database_read_url="postgresql+asyncpg://replica/db")  # the SQLite default primary
    assert refused.value.field == "QUESTLINE_DATABASE_READ_URL"
    with pytest.raises(ValidationError):
        load_settings({}, database_url="postgresql+asyncpg://primary/db", database_read_url="sqlite+aiosqlite:///x")
    fine = load_settings({}, database_url="postgresql+asyncpg://p/db", database_read_url="postgresql+asyncpg://r/db")
    assert fine.database_read_url.endswith("r/db")


async def test_statistics_and_exports_read_the_replica_own_data_the_primary(
    databases: tuple[str, str], clock: FrozenClock
) -> None:
    from web.app import create_app

    primary, replica = databases
    await upgrade(primary)
    db = Database(create_engine(primary))
    brand = await make_brand(db, clock)
    await db.dispose()
    settings = load_settings(
        {},
        database_url=primary,
        database_read_url=replica,
        redis_url="memory://",
        auto_migrate=False,
        secret=TEST_SECRET,
        event_max_future_seconds=60 * 86400,
    )
    app = create_app(settings, clock=clock, deliver_webhooks=False)
    at = clock.now().isoformat()
    async with AsyncTestClient(app=app) as client:
        assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
        for n in range(2):
            sent = await client.post("/v1/events", json=event(f"v{n}", "m", "visit", at), headers=brand.headers)
            assert sent.status_code == 200, sent.text
        _copy(primary, replica)  # the replica has caught up to here…
        sent = await client.post("/v1/events", json=event("v2", "m", "visit", at), headers=brand.headers)
        assert sent.status_code == 200  # …and lags this one
        services = app.state.services
        # The member's own state: the primary, with the third visit.
        points = await client.get("/v1/members/m/points", headers=brand.headers)
        assert points.json()["available"] == 30
        # The brand's export of the member and the console's statistics: the replica, two visits.
        exported = await client.get("/v1/members/m/export", headers=brand.headers)
        assert exported.status_code == 200, exported.text
        assert [e["id"] for e in exported.json()["events"]] == ["v0", "v1"]
        assert services.db.replica_reads >= 1 and services.db.replica_fallbacks == 0
    # The console's statistics (a Database on this test's loop, built as the server builds its own).
    db = Database(create_engine(primary), replica=create_engine(replica))
    try:
        figures = await stats.overview(db, brand_id=brand.brand.id, tz=brand.brand.tz, now=clock.now(), days=7)
        assert figures.events_total == 2
        assert (db.replica_reads, db.replica_fallbacks) == (1, 0)
    finally:
        await db.dispose()


async def test_a_replica_that_does_not_answer_is_skipped(databases: tuple[str, str], clock: FrozenClock) -> None:
    primary, _ = databases
    await upgrade(primary)
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
    db = Database(create_engine(primary), replica=create_engine(unreachable, connect_timeout=2))
    try:
        brand = await make_brand(db, clock)
        figures = await stats.overview(
            db, brand_id=brand.brand.id, tz=brand.brand.tz, now=datetime(2026, 11, 20, tzinfo=UTC), days=7
        )
        assert figures.events_total == 0 and figures.members_total == 0
        assert (db.replica_reads, db.replica_fallbacks) == (0, 1)
    finally:
        await db.dispose()
