"""Outages: Redis killed mid-test, PostgreSQL connections terminated mid-load.

- Redis: a ``redis-server`` started by the test on its own loopback port, killed, then started again
  (empty). Ingestion keeps its latency while it is down, boards are read from SQL (``"source": "sql"``),
  readiness names Redis, and the boards are caught up in Redis by themselves once it is back.
- PostgreSQL: ``pg_terminate_backend`` on the app's connections during concurrent ingestion: every
  answer is 200 or a 503 problem with ``Retry-After``, the pool recovers, no event that got 200 is lost.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import delete

from leaderboards import keys
from leaderboards.orm import BoardRow
from tests.conftest import CI, PG_ADMIN_URL, REDIS_URL
from tests.helpers import event


@pytest.fixture(params=["postgres+redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """Outages are about the real servers."""
    return str(request.param)


@pytest.fixture(autouse=True)
async def _drop_boards(brand, db):
    yield
    async with db.write() as session:
        await session.execute(delete(BoardRow).where(BoardRow.brand_id == brand.brand.id))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throw-away ``redis-server`` on its own port (no persistence: a restart starts empty)."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server() -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(binary, free_port())
    server.start()
    yield server
    server.kill()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def timed_event(client: AsyncTestClient[Any], brand: Any, event_id: str, member: str, at: str) -> float:
    start = time.perf_counter()
    response = await client.post("/v1/events", json=event(event_id, member, "visit", at), headers=brand.headers)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed


async def test_redis_down_ingestion_stays_fast_reads_use_sql_and_boards_catch_up(
    settings, clock, brand, redis_server: RedisServer, redis_namespace: str
) -> None:
    from web.app import create_app

    config = msgspec.structs.replace(settings, redis_url=redis_server.url, redis_breaker_cooldown_s=0.5)
    app = create_app(config, clock=clock, deliver_webhooks=False)
    members = [f"m{n}" for n in range(8)]
    at = clock.now().isoformat()
    async with AsyncTestClient(app=app) as client:
        spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
        put = await client.put("/v1/leaderboards/visits", json=spec, headers=brand.headers)
        assert put.status_code in (200, 201), put.text

        healthy: list[float] = []
        for n in range(48):
            took = await timed_event(client, brand, f"h{n}", members[n % len(members)], at)
            if n >= 8:  # warm-up (first connections, caches) left out
                healthy.append(took)
        page = (await client.get("/v1/leaderboards/visits", headers=brand.headers)).json()
        assert page["source"] == "redis"
        period = page["period"]["id"]

        redis_server.kill()
        outage = [await timed_event(client, brand, f"o{n}", members[n % 3], at) for n in range(40)]
        assert p99(outage) < 2 * p99(healthy) + 0.05, (p99(outage), p99(healthy))

        during = await client.get("/v1/leaderboards/visits", params={"around": "m0"}, headers=brand.headers)
        assert during.status_code == 200, during.text
        sql_page = during.json()
        assert sql_page["source"] == "sql"
        scores = {e["member"]: e["score"] for e in sql_page["entries"]}
        assert sum(scores.values()) == 48 + 40  # every event counted, those of the outage too
        assert (scores["m0"], scores["m1"], scores["m7"]) == (6 + 14, 6 + 13, 6)
        assert sql_page["me"]["rank"] == 1
        ready = await client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["down"] == ["redis"]
        assert ready.json()["stale_boards"] == 1
        assert (await client.get("/health/live")).status_code == 200

        # Redis comes back empty. Nothing is asked of the app: the boards must come back by themselves.
        redis_server.start()
        direct = Redis.from_url(redis_server.url)
        try:
            zkey = keys.standings(redis_namespace, brand.brand.id, "visits", period)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if await direct.exists(keys.ready(redis_namespace, brand.brand.id)) and await direct.zcard(zkey):
                    break
                await asyncio.sleep(0.1)
            assert await direct.exists(keys.ready(redis_namespace, brand.brand.id)), "the boards were not caught up"
            assert await direct.zcard(zkey) == len(members)
        finally:
            await direct.aclose()

        after = (await client.get("/v1/leaderboards/visits", params={"around": "m0"}, headers=brand.headers)).json()
        assert after["source"] == "redis"
        assert after["entries"] == sql_page["entries"]
        assert after["me"] == sql_page["me"]
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["stale_boards"] == 0


async def test_stale_boards_are_read_from_sql_and_caught_up_when_the_breaker_closes(settings, clock, brand) -> None:
    """Redis still holds the boards (sentinel present) but missed writes: reads use SQL until caught up."""
    from web.app import create_app

    app = create_app(msgspec.structs.replace(settings, redis_url=REDIS_URL), clock=clock, deliver_webhooks=False)
    at = clock.now().isoformat()
    async with AsyncTestClient(app=app) as client:
        spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
        assert (await client.put("/v1/leaderboards/visits", json=spec, headers=brand.headers)).status_code == 201
        for n in range(3):
            await timed_event(client, brand, f"a{n}", "ada", at)
        boards = client.app.state.services.leaderboards
        breaker = boards.breaker
        breaker.cooldown = 60.0
        for _ in range(breaker.failures):
            breaker.failure()  # as if Redis had refused that many connects
        assert breaker.is_open
        for n in range(2):
            await timed_event(client, brand, f"b{n}", "bob", at)
        await timed_event(client, brand, "a3", "ada", at)
        assert boards.catch_up.stale_since(brand.brand.id) is not None
        page = (await client.get("/v1/leaderboards/visits", headers=brand.headers)).json()
        assert page["source"] == "sql"
        assert [(e["member"], e["score"]) for e in page["entries"]] == [("ada", 4), ("bob", 2)]

        breaker.success()  # Redis answers again
        deadline = time.monotonic() + 10
        while boards.catch_up.stale_since(brand.brand.id) is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # (the app runs on another thread: a single look-up, no copy)
        assert boards.catch_up.stale_since(brand.brand.id) is None
        page = (await client.get("/v1/leaderboards/visits", headers=brand.headers)).json()
        assert page["source"] == "redis"
        assert [(e["member"], e["score"]) for e in page["entries"]] == [("ada", 4), ("bob", 2)]


async def _terminate(database: str) -> int:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()) AS t WHERE ok",
                database,
            )
        )
    finally:
        await conn.close()


async def test_postgres_connections_killed_mid_load_answer_503_and_lose_nothing(settings, clock, brand, db) -> None:
    from web.app import create_app

    database = settings.database_url.rsplit("/", 1)[1]
    app = create_app(msgspec.structs.replace(settings, redis_url=REDIS_URL), clock=clock, deliver_webhooks=False)
    at = clock.now().isoformat()
    answers: list[tuple[str, int, dict[str, str]]] = []
    stop = asyncio.Event()
    async with AsyncTestClient(app=app) as client:

        async def send(event_id: str) -> None:
            # A hang fails the test: every answer comes within a bound.
            response = await asyncio.wait_for(
                client.post("/v1/events", json=event(event_id, event_id[:3], "visit", at), headers=brand.headers),
                timeout=15,
            )
            answers.append((event_id, response.status_code, dict(response.headers)))

        async def worker(w: int) -> None:
            n = 0
            while not stop.is_set():
                await send(f"w{w}-{n}")
                n += 1

        workers = [asyncio.create_task(worker(w)) for w in range(8)]
        await asyncio.sleep(0.5)
        terminated = 0
        for _ in range(4):
            terminated += await _terminate(database)
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*workers)
        assert terminated > 0
        during = list(answers)
        assert {status for _id, status, _h in during} <= {200, 503}, [a[:2] for a in during if a[1] not in (200, 503)]
        for _id, status, headers in during:
            if status == 503:
                assert int(headers["retry-after"]) > 0
                assert headers["content-type"].startswith("application/problem+json")
        # The pool recovered by itself.
        for n in range(5):
            await send(f"after-{n}")
        assert [status for _id, status, _h in answers[len(during) :]] == [200] * 5
    accepted = [event_id for event_id, status, _h in answers if status == 200]
    assert len(accepted) > 20
    conn = await asyncpg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT event_key, count(*) AS n FROM event_log WHERE brand_id = $1 GROUP BY event_key", brand.brand.id
        )
    finally:
        await conn.close()
    await db.dispose()  # the test's own pooled connections were terminated too
    stored = {r["event_key"]: r["n"] for r in rows}
    missing = [e for e in accepted if stored.get(e) != 1]
    assert not missing, f"{len(missing)} events answered 200 but are not in the event log once: {missing[:5]}"
    print(  # shown with -s: how the outage went
        f"{len(during)} requests, {sum(1 for a in during if a[1] == 503)} answered 503, {terminated} backends terminated"
    )
