"""Leaderboards at 1,000,000 members on the real Redis: updates/s and reads/s, each beside the raw redis-py limit.

Run: ``.venv/bin/python bench/leaderboards.py [--members 1000000] [--rounds 3] [--seconds 4] [--workers 1]``.
Prints a table and writes ``bench/results/leaderboards.json``. Needs the real PostgreSQL and Redis; uses a
throw-away database and its own Redis namespace, both removed at the end. Loopback traffic only.

- updates: absolute totals written through ``BoardStore.apply`` (MULTI: sentinel check, ZADD, rank
  count, ZCARD) by 50 concurrent tasks, beside the same four commands in one raw redis-py pipeline;
- reads: ``GET /v1/leaderboards/<board>?limit=10&around=<member>&k=5`` (top 10 + the member's rank and
  percentile + ±5 neighbours) through the HTTP API of a real ``questline serve`` on PostgreSQL and Redis,
  over 50 keep-alive connections, for a random member of the million each time; beside one Lua script
  doing the same reads (ZRANGE top, ZREVRANK, ZSCORE, ZRANGE around, ZCOUNT) from 50 concurrent tasks;
- memory per member: ``used_memory`` before and after loading the sorted set, divided by the members.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, median, print_table, scratch_database, server, write_json
from engine.clock import SystemClock
from engine.db import Database, create_engine
from engine.tenants import create_brand
from leaderboards import keys
from leaderboards.models import BoardSpec, PointsMetric
from leaderboards.service import Leaderboards
from leaderboards.store import Slot, Write

CONCURRENCY = 50
BOARD = "all-points"
READ_SCRIPT = """
local top = redis.call('ZRANGE', KEYS[1], 0, 9, 'REV', 'WITHSCORES')
local pos = redis.call('ZREVRANK', KEYS[1], ARGV[1])
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local around = {}
local better = 0
if pos then
  local k = tonumber(ARGV[2])
  local first = pos - k
  if first < 0 then first = 0 end
  around = redis.call('ZRANGE', KEYS[1], first, pos + k, 'REV', 'WITHSCORES')
  better = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
end
return {top, pos, score, around, better}
"""


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def load_members(pg_url: str, brand_id: int, count: int) -> int:
    """COPY ``count`` members into PostgreSQL; returns the id of the first (ids are consecutive)."""
    conn = await asyncpg.connect(pg_url)
    try:
        now = datetime.now(UTC)
        records = ((brand_id, f"m{n}", f"Member {n}", "", "{}", now, now) for n in range(count))
        await conn.copy_records_to_table(
            "members",
            records=records,
            columns=["brand_id", "external_id", "display_name", "locale", "attributes", "created_at", "updated_at"],
        )
        first = await conn.fetchval("SELECT min(id) FROM members WHERE brand_id = $1", brand_id)
        total = await conn.fetchval("SELECT count(*) FROM members WHERE brand_id = $1", brand_id)
        assert total == count
        assert await conn.fetchval("SELECT max(id) FROM members WHERE brand_id = $1", brand_id) == first + count - 1
        return int(first)
    finally:
        await conn.close()


async def run_for(seconds: float, worker) -> float:  # type: ignore[no-untyped-def]
    """Run ``worker`` in CONCURRENCY tasks for ``seconds``; returns operations per second."""
    stop = time.perf_counter() + seconds
    done = [0] * CONCURRENCY

    async def loop(index: int) -> None:
        rng = random.Random(index)
        while time.perf_counter() < stop:
            await worker(rng)
            done[index] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(CONCURRENCY)))
    return sum(done) / (time.perf_counter() - started)


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client (the load generator must not be the bottleneck)."""

    def __init__(self, host: str, port: int, headers: str) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    namespace = f"qlbench{uuid.uuid4().hex[:8]}"
    members = args.members
    results: dict[str, Any] = {"members": members, "concurrency": CONCURRENCY, "rounds": args.rounds}
    redis = Redis.from_url(REDIS_URL)
    async with scratch_database("ql_bench_lb") as (url, pg_url):
        db = Database(create_engine(url))
        try:
            brand, issued = await create_brand(
                db, name="Bench", slug="bench", timezone="Europe/Rome", now=SystemClock().now()
            )
            secret = next(k.key for k in issued if k.kind.value == "secret")
            lb = Leaderboards(db, redis, namespace=namespace, clock=SystemClock(), close_interval=None)
            board, _ = await lb.put_board(brand, BoardSpec(key=BOARD, title="Points", metric=PointsMetric()))
            slot = Slot(brand_id=brand.id, board=board, period=(await lb_period(lb, brand)))
            key = lb.store.key(slot)

            started = time.perf_counter()
            first_id = await load_members(pg_url, brand.id, members)
            results["load_sql_s"] = round(time.perf_counter() - started, 2)
            before = await used_memory(redis)
            started = time.perf_counter()
            rng = random.Random(1)
            async with redis.pipeline(transaction=False) as pipe:
                for start in range(0, members, 10_000):
                    pipe.zadd(
                        key,
                        {
                            str(first_id + n).encode(): rng.randint(0, 1_000_000)
                            for n in range(start, min(start + 10_000, members))
                        },
                    )
                    if len(pipe) >= 10:
                        await pipe.execute()
                await pipe.execute()
            results["load_redis_s"] = round(time.perf_counter() - started, 2)
            after = await used_memory(redis)
            results["memory_bytes_per_member"] = round((after - before) / members, 1)
            assert await redis.zcard(key) == members

            # --- updates ---------------------------------------------------------------------------
            ready_key = keys.ready(namespace, brand.id)

            async def raw_update(r: random.Random) -> None:
                member = str(first_id + r.randrange(members)).encode()
                score = float(r.randint(0, 1_000_000))
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.exists(ready_key)
                    pipe.zadd(key, {member: score})
                    pipe.zcount(key, f"({int(score)}", "+inf")
                    pipe.zcard(key)
                    await pipe.execute()

            async def store_update(r: random.Random) -> None:
                write = Write(
                    slot=slot,
                    member_id=first_id + r.randrange(members),
                    units=r.randint(0, 1_000_000),
                    reached_at=datetime.now(UTC),
                )
                await lb.store.apply([write])

            raw_updates = [await run_for(args.seconds, raw_update) for _ in range(args.rounds)]
            store_updates = [await run_for(args.seconds, store_update) for _ in range(args.rounds)]

            # --- reads -----------------------------------------------------------------------------
            script = redis.register_script(READ_SCRIPT)

            async def raw_read(r: random.Random) -> None:
                member = str(first_id + r.randrange(members)).encode()
                await script(keys=[key], args=[member, 5])

            raw_reads = [await run_for(args.seconds, raw_read) for _ in range(args.rounds)]
        finally:
            await db.dispose()

        with server(url, namespace=namespace, workers=args.workers) as base:
            host, port = base.removeprefix("http://").split(":")
            connections = [
                HttpConnection(host, int(port), f"Authorization: Bearer {secret}\r\n") for _ in range(CONCURRENCY)
            ]
            errors = 0

            def http_worker(index_of: dict[int, int], hot: int = 0):  # type: ignore[no-untyped-def]
                async def read(r: random.Random) -> None:
                    nonlocal errors
                    conn = connections[index_of.setdefault(id(r), len(index_of))]
                    who = r.randrange(hot) if hot else r.randrange(members)
                    status, body = await conn.get(f"/v1/leaderboards/{BOARD}?limit=10&around=m{who}&k=5")
                    if status != 200:
                        errors += 1
                    elif args.check and r.random() < 0.01:
                        page = json.loads(body)
                        assert len(page["entries"]) == 10
                        assert page["me"]["rank"]
                        assert len(page["around"]) == 11

                return read

            await run_for(1.0, http_worker({}))  # warm-up: connections, key cache, definitions
            http_reads = [await run_for(args.seconds, http_worker({})) for _ in range(args.rounds)]
            await run_for(1.0, http_worker({}, args.hot))
            warm_reads = [await run_for(args.seconds, http_worker({}, args.hot)) for _ in range(args.rounds)]
            for conn in connections:
                await conn.close()
            results["http_errors"] = errors

    names = [k async for k in redis.scan_iter(match=f"{namespace}:*", count=1000)]
    for start in range(0, len(names), 500):
        await redis.unlink(*names[start : start + 500])
    await redis.aclose()

    results["updates"] = {
        "raw_pipeline_per_s": [round(x) for x in raw_updates],
        "board_store_per_s": [round(x) for x in store_updates],
        "median_raw": round(median(raw_updates)),
        "median_store": round(median(store_updates)),
        "ratio": round(median(store_updates) / median(raw_updates), 3),
    }
    results["reads"] = {
        "raw_lua_per_s": [round(x) for x in raw_reads],
        "http_api_per_s": [round(x) for x in http_reads],
        "median_raw": round(median(raw_reads)),
        "median_http": round(median(http_reads)),
        "ratio": round(median(http_reads) / median(raw_reads), 3),
        "http_api_warm_per_s": [round(x) for x in warm_reads],
        "median_http_warm": round(median(warm_reads)),
        "ratio_warm": round(median(warm_reads) / median(raw_reads), 3),
        "warm_members": args.hot,
        "server_workers": args.workers,
    }
    return results


async def lb_period(lb: Leaderboards, brand: Any) -> Any:
    from leaderboards.ranking import current_period

    board = await lb.board(brand, BOARD, public=False)
    return current_period(board, datetime.now(UTC), brand.tz)


def report(results: dict[str, Any]) -> None:
    updates, reads = results["updates"], results["reads"]
    print_table(
        f"Leaderboards, {results['members']:,} members on real Redis, {CONCURRENCY} concurrent, medians of {results['rounds']} rounds",
        ["operation", "ours/s", "raw limit/s", "ratio"],
        [
            [
                "update (absolute ZADD + rank) via BoardStore",
                float(updates["median_store"]),
                float(updates["median_raw"]),
                updates["ratio"],
            ],
            [
                f"read top10+rank+around±5 via HTTP ({reads['server_workers']} worker), random member of all",
                float(reads["median_http"]),
                float(reads["median_raw"]),
                reads["ratio"],
            ],
            [
                f"  same, around one of {reads['warm_members']} members (names cached)",
                float(reads["median_http_warm"]),
                float(reads["median_raw"]),
                reads["ratio_warm"],
            ],
        ],
    )
    print(f"\n  memory per member: {results['memory_bytes_per_member']} bytes (INFO memory used_memory delta)")
    print(
        f"  loading: {results['load_sql_s']} s members into PostgreSQL (COPY), {results['load_redis_s']} s sorted set (pipelined ZADD)"
    )
    print(f"  HTTP errors: {results['http_errors']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--hot", type=int, default=200, help="Members of the warm-cache read scenario.")
    parser.add_argument("--check", action="store_true", help="Decode 1% of the HTTP answers and check their shape.")
    outcome = asyncio.run(main(parser.parse_args()))
    report(outcome)
    print(f"\n  written to {write_json('leaderboards', outcome)}")
