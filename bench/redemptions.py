"""Redemptions per second through the real HTTP server on PostgreSQL, beside a raw-SQL form of the same transaction.

Run: ``.venv/bin/python bench/redemptions.py [--rounds 3] [--count 1000] [--clients 50] [--workers 2]``. Prints a
table and writes ``bench/results/redemptions.json``. Needs the real PostgreSQL and Redis (see README).

Each round, on a fresh reward with a code pool: ``count`` redemptions by 500 members (each has points for several)
from ``clients`` concurrent clients, through ``POST /v1/members/{id}/redemptions``. The raw form is the same
transaction in asyncpg on a pool of ``clients`` connections: lock the balance row, conditional debit, stock
decrement, code claim with ``SKIP LOCKED``, redemption insert, spend ledger row and its allocation.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median, print_table, scratch_database, server, write_json

MEMBERS = 500
COST = 10
GOAL = 0.3


async def create_brand(database_url: str) -> tuple[int, str]:
    """A brand; returns its id and secret key."""
    from engine.clock import SystemClock
    from engine.db import Database, create_engine
    from engine.tenants import KeyKind
    from engine.tenants import create_brand as make

    db = Database(create_engine(database_url))
    try:
        brand, keys = await make(
            db, name=f"bench-{uuid.uuid4().hex[:8]}", timezone="Europe/Rome", now=SystemClock().now()
        )
    finally:
        await db.dispose()
    return int(brand.id), next(k.key for k in keys if k.kind is KeyKind.SECRET)


async def fan_out(base: str, key: str, calls: list[tuple[str, str, Any]], *, clients: int) -> float:
    """Send every ``(method, path, json)`` with ``clients`` concurrent clients; returns elapsed seconds."""
    queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
    for call in calls:
        queue.put_nowait(call)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120, headers=headers) as client:

        async def worker() -> None:
            while not queue.empty():
                method, path, body = queue.get_nowait()
                response = await client.request(method, path, json=body)
                if response.status_code >= 300:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(clients))), timeout=600)
        return time.perf_counter() - started


async def prepare(base: str, key: str, reward: str, *, count: int, clients: int, fund: bool) -> None:
    """A voucher reward with ``count`` pool codes; members funded once (untimed)."""
    spec = {"name": {"en": reward}, "cost": COST, "type": "voucher", "codes": {"source": "pool"}, "stock": count}
    codes = [f"{reward.upper()}-{i:06d}" for i in range(count)]
    await fan_out(
        base, key, [("PUT", f"/v1/rewards/{reward}", spec), ("POST", f"/v1/rewards/{reward}/codes", codes)], clients=1
    )
    if fund:
        members = [("POST", "/v1/members", {"external_id": f"b{i}"}) for i in range(MEMBERS)]
        await fan_out(base, key, members, clients=clients)
        calls = [
            ("POST", f"/v1/members/b{i}/points/adjustments", {"points": 1_000_000, "reason": "bench"})
            for i in range(MEMBERS)
        ]
        await fan_out(base, key, calls, clients=clients)


async def http_round(base: str, key: str, reward: str, *, count: int, clients: int) -> float:
    """Timed: ``count`` redemptions over HTTP; returns redemptions per second."""
    calls = [
        ("POST", f"/v1/members/b{i % MEMBERS}/redemptions", {"reward": reward, "idempotency_key": f"{reward}-{i}"})
        for i in range(count)
    ]
    elapsed = await fan_out(base, key, calls, clients=clients)
    return count / elapsed


RAW = {
    "lock": "SELECT available FROM point_balances WHERE brand_id = $1 AND member_id = $2 FOR UPDATE",
    "debit": (
        "UPDATE point_balances SET available = available - $3, lifetime_spent = lifetime_spent + $3, updated_at = $4 "
        "WHERE brand_id = $1 AND member_id = $2 AND available >= $3 RETURNING available"
    ),
    "lot": (
        "SELECT l.id FROM ledger l WHERE l.brand_id = $1 AND l.member_id = $2 AND l.kind = 'earn' "
        "AND l.points > COALESCE((SELECT SUM(a.points) FROM ledger_allocations a WHERE a.lot_id = l.id), 0) "
        "ORDER BY l.expires_at NULLS LAST, l.id LIMIT 1"
    ),
    "stock": (
        "UPDATE reward_stock SET issued = issued + 1 WHERE reward_id = $1 AND (total IS NULL OR issued < total) "
        "RETURNING issued"
    ),
    "code": (
        "SELECT id, code FROM reward_codes WHERE reward_id = $1 AND status = 'available' ORDER BY id LIMIT 1 "
        "FOR UPDATE SKIP LOCKED"
    ),
    "take": "UPDATE reward_codes SET status = 'issued', redemption_id = $2 WHERE id = $1",
    "redemption": (
        "INSERT INTO redemptions (public_id, brand_id, member_id, reward_id, reward_key, name, cost, code, status, "
        "idempotency_key, refund, reason, issued_at) VALUES ($1, $2, $3, $4, $5, '{}', $6, NULL, 'issued', $7, '', '', $8) "
        "RETURNING id"
    ),
    "spend": (
        "INSERT INTO ledger (brand_id, member_id, points, source, key, reason, occurred_at, local_day, created_at, kind) "
        "VALUES ($1, $2, $3, 'redemption', $4, '', $5, $6, $5, 'spend') RETURNING id"
    ),
    "allocate": "INSERT INTO ledger_allocations (brand_id, entry_id, lot_id, points) VALUES ($1, $2, $3, $4)",
    "finish": "UPDATE redemptions SET code = $2, spend_entry_id = $3 WHERE id = $1",
}


async def raw_round(dsn: str, brand_id: int, reward: str, *, count: int, clients: int) -> float:
    """Timed: ``count`` of the same transaction in raw SQL; returns transactions per second."""
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)
    try:
        async with pool.acquire() as conn:
            reward_id = await conn.fetchval("SELECT id FROM rewards WHERE brand_id = $1 AND key = $2", brand_id, reward)
            members = [
                r[0]
                for r in await conn.fetch(
                    "SELECT id FROM members WHERE brand_id = $1 ORDER BY external_id LIMIT $2", brand_id, MEMBERS
                )
            ]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)

        async def one(conn: asyncpg.Connection, i: int) -> None:
            member = members[i % len(members)]
            now = datetime.now(UTC)
            async with conn.transaction():
                await conn.fetchval(RAW["lock"], brand_id, member)
                if await conn.fetchval(RAW["debit"], brand_id, member, COST, now) is None:
                    raise RuntimeError("insufficient points")
                lot = await conn.fetchval(RAW["lot"], brand_id, member)
                if await conn.fetchval(RAW["stock"], reward_id) is None:
                    raise RuntimeError("out of stock")
                rid = await conn.fetchval(
                    RAW["redemption"], f"rdm_{secrets.token_hex(10)}", brand_id, member, reward_id, reward, COST,
                    f"{reward}-{i}", now,
                )  # fmt: skip
                code = await conn.fetchrow(RAW["code"], reward_id)
                if code is None:
                    raise RuntimeError("no code")
                await conn.execute(RAW["take"], code["id"], rid)
                entry = await conn.fetchval(RAW["spend"], brand_id, member, -COST, reward, now, now.date())
                await conn.execute(RAW["allocate"], brand_id, entry, lot, COST)
                await conn.execute(RAW["finish"], rid, code["code"], entry)

        async def worker() -> None:
            async with pool.acquire() as conn:
                while not queue.empty():
                    await one(conn, queue.get_nowait())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return count / (time.perf_counter() - started)
    finally:
        await pool.close()


async def main() -> None:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    http_rates: list[float] = []
    raw_rates: list[float] = []
    async with scratch_database("ql_bench_rdm") as (url, dsn):
        brand_id, key = await create_brand(url)
        with server(url, namespace=f"bench{uuid.uuid4().hex[:6]}", workers=args.workers) as base:
            for n in range(args.rounds):
                reward = f"http{n}"
                await prepare(base, key, reward, count=args.count, clients=args.clients, fund=n == 0)
                await prepare(base, key, f"raw{n}", count=args.count, clients=args.clients, fund=False)
                conn = await asyncpg.connect(dsn)
                await conn.execute("ANALYZE")
                await conn.close()
                http_rates.append(await http_round(base, key, reward, count=args.count, clients=args.clients))
                raw_rates.append(await raw_round(dsn, brand_id, f"raw{n}", count=args.count, clients=args.clients))
                print(f"round {n + 1}: http {http_rates[-1]:.0f}/s, raw {raw_rates[-1]:.0f}/s", flush=True)
    http_median, raw_median = median(http_rates), median(raw_rates)
    ratio = http_median / raw_median if raw_median else 0.0
    print_table(
        f"Redemptions/s, {args.clients} concurrent clients, {args.count} per round, medians of {args.rounds} rounds",
        ["form", "redemptions/s", "rounds"],
        [
            ["HTTP (POST /v1/members/{id}/redemptions)", http_median, ", ".join(f"{r:.0f}" for r in http_rates)],
            ["raw SQL (asyncpg, same transaction)", raw_median, ", ".join(f"{r:.0f}" for r in raw_rates)],
            ["ratio HTTP / raw", ratio, f"goal >= {GOAL}"],
        ],
    )
    path = write_json(
        "redemptions",
        {
            "clients": args.clients,
            "count": args.count,
            "rounds": args.rounds,
            "workers": args.workers,
            "http_per_second": http_rates,
            "raw_per_second": raw_rates,
            "http_median": http_median,
            "raw_median": raw_median,
            "ratio": round(ratio, 3),
            "goal": GOAL,
            "at": datetime.now(UTC).isoformat(),
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
