"""Shared fixtures: every store fixture runs on the embedded backends *and* the real servers.

- ``backend`` is parametrized ``sqlite+fakeredis`` and ``postgres+redis``. The real servers are those of
  the development machine (PostgreSQL 127.0.0.1:5432 trust auth, Redis 127.0.0.1:6379); override with
  ``QUESTLINE_TEST_PG_URL`` / ``QUESTLINE_TEST_REDIS_URL``.
- Tests marked ``redis_cluster`` (the leaderboard and live-update suites) also run on
  ``postgres+rediscluster``: PostgreSQL and the Redis Cluster of ``QUESTLINE_TEST_REDIS_CLUSTER_URL``
  (``.ci/run`` starts one with ``scripts/redis_cluster.sh``: three masters, three replicas).
- A missing real server skips its half locally but **fails** under ``CI=true``.
- PostgreSQL tests run in a throw-away database created for the session; Redis tests use a unique key
  namespace that is deleted afterwards (never ``FLUSHDB``). Tests isolate from each other by creating
  their own brand (tenants are sealed).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from engine.clock import FrozenClock
from engine.db import Database, create_engine
from engine.schema import upgrade_sync
from engine.settings import Settings, load_settings
from tests.helpers import BrandKeys, make_brand

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("QUESTLINE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("QUESTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["sqlite+fakeredis", "postgres+redis"]
CLUSTER_BACKEND = "postgres+rediscluster"
REDIS_CLUSTER_URL = os.environ.get(
    "QUESTLINE_TEST_REDIS_CLUSTER_URL", "redis+cluster://127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303"
)
TEST_SECRET = "questline-test-secret-0123456789abcdef0123456789"
#: Where every webhook host "resolves" in tests: a public address, so the egress guard lets it through.
PUBLIC_ADDRESS = ipaddress.ip_address("93.184.215.14")


async def public_resolver(host: str, port: int) -> list[Any]:
    """A resolver that answers one public address for any name (tests deliver through MockTransport)."""
    return [PUBLIC_ADDRESS]


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc!r})"
    if CI:
        pytest.fail(f"{message}; under CI=true a missing service is a failure", pytrace=False)
    pytest.skip(message)


def _run_blocking(coro_fn: Any) -> Any:
    """Run ``coro_fn()`` to completion from sync code, even while an event loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_fn())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro_fn()).result()


def _pg_admin(sql: str) -> None:
    import asyncpg

    async def execute() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    _run_blocking(execute)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A migrated, throw-away PostgreSQL database for this test session."""
    name = f"ql_test_{uuid.uuid4().hex[:10]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    url = f"{base}/{name}"
    upgrade_sync(url)
    yield url
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for this test session."""
    path: Path = tmp_path_factory.mktemp("sqlite") / "questline.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade_sync(url)
    return url


@pytest.fixture(scope="session")
def redis_namespace() -> str:
    """A key prefix unique to this test session."""
    return f"qltest{uuid.uuid4().hex[:8]}"


@pytest.hookimpl(tryfirst=True)  # before the fixture's own params are applied
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``redis_cluster`` run on the Redis Cluster backend too."""
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("redis_cluster"):
        # As a parametrize mark (read by pytest's own hook, which then leaves the fixture's params alone).
        metafunc.definition.add_marker(pytest.mark.parametrize("backend", [*BACKENDS, CLUSTER_BACKEND], indirect=True))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite+fakeredis``, ``postgres+redis`` or (``redis_cluster`` tests) ``postgres+rediscluster``."""
    return str(request.param)


async def open_cluster(url: str = REDIS_CLUSTER_URL) -> Redis:
    """A client on the test Redis Cluster (skipped locally, a failure under CI, when it is not running)."""
    from redis.asyncio.cluster import ClusterNode

    from engine.redisconn import Cluster, cluster_nodes

    nodes, options = cluster_nodes(url)
    client = Cluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **options)
    try:
        await client.initialize()
        await client.ping()
    except Exception as exc:
        await client.aclose()
        _unavailable("Redis Cluster", exc)
    return cast("Redis", client)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The migrated database URL of the current backend."""
    name = "pg_url" if backend.startswith("postgres") else "sqlite_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A :class:`Database` on the current backend."""
    database = Database(create_engine(database_url))
    yield database
    await database.dispose()


@pytest.fixture
async def redis(backend: str, redis_namespace: str) -> AsyncIterator[Redis]:
    """A Redis client on the current backend; keys of the session namespace are removed afterwards."""
    if backend.endswith("fakeredis"):
        import fakeredis

        client: Redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        yield client
        await client.aclose()
        return
    if backend == CLUSTER_BACKEND:
        client = await open_cluster()
    else:
        client = Redis.from_url(REDIS_URL)
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            _unavailable("Redis", exc)
    yield client
    async for key in client.scan_iter(match=f"{redis_namespace}*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at 2026-11-20 10:00 UTC (a Friday), moved by tests as needed."""
    return FrozenClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))


@pytest.fixture
def settings(backend: str, database_url: str, redis_namespace: str) -> Settings:
    """Settings for the current backend (no auto-migration: the session fixtures migrated already)."""
    redis_url = {"sqlite+fakeredis": "memory://", CLUSTER_BACKEND: REDIS_CLUSTER_URL}.get(backend, REDIS_URL)
    # The frozen clock sits on 2026-11-20 while many tests send events dated later that month: widen the
    # plausibility window's future side for them (tests/web/test_bad_input.py checks the 5-minute default).
    return load_settings(
        {},
        database_url=database_url,
        redis_url=redis_url,
        redis_namespace=redis_namespace,
        auto_migrate=False,
        secret=TEST_SECRET,  # outside the embedded default a short or default secret refuses to start
        event_max_future_seconds=60 * 86400,
    )


@pytest.fixture
async def brand(db: Database, clock: FrozenClock) -> BrandKeys:
    """A fresh brand (Europe/Rome) on the current backend."""
    return await make_brand(db, clock)


@pytest.fixture
async def client(
    backend: str, settings: Settings, redis: Redis, clock: FrozenClock
) -> AsyncIterator[AsyncTestClient[Any]]:
    """An HTTP client on ``create_app`` for the current backend, with the frozen clock.

    On fakeredis the app shares the test's fake server; on the real Redis the app opens its own client
    (the test client serves the app on another event loop, and a client is bound to its loop).
    """
    from web.app import create_app

    # Webhook delivery is driven explicitly by the tests that need it, so outbox state never depends on timing.
    app = create_app(
        settings,
        clock=clock,
        redis=redis if backend.endswith("fakeredis") else None,
        deliver_webhooks=False,
        resolver=public_resolver,
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client
