"""Ingestion throughput through the real HTTP server on PostgreSQL, beside a raw-SQL insert of the same rows.

Run: ``.venv/bin/python bench/ingest.py [--rounds 3] [--workers 2]``. Prints a table and writes
``bench/results/ingest.json``. Needs the real PostgreSQL and Redis (see README).

Scenarios (each on a fresh brand, medians over rounds):
- single: one event per request, 16 concurrent clients;
- batch: 1000-event batches, 2 concurrent clients;
- batch + 50 challenges: the same with 50 active challenges of mixed rule types (when the challenges
  package provides ``bench/challenge_program.py``);
- raw SQL: asyncpg inserting the same event-log and ledger rows in 1000-row transactions — the limit.

Before each HTTP scenario the scratch database is ``ANALYZE``d, as autovacuum keeps a long-lived one: on
tables that grew from empty within seconds PostgreSQL's statistics say a brand has a handful of rows, and
the duplicate check then reads every row of the brand instead of probing the unique index (measured:
about 100 ms of a 1000-event batch, growing with the log). The challenge cost is also given per round
(each round's two batch scenarios run back to back), which is less exposed to a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REDIS_URL, median, print_table, scratch_database, server, write_json

EVENT_TYPES = ["purchase", "purchase", "visit", "visit", "review", "survey", "referral"]
START = datetime(2026, 11, 2, 8, tzinfo=UTC)


def make_events(count: int, *, members: int, seed: int) -> list[dict[str, Any]]:
    """Plausible events spread over a few weeks and ``members`` members."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    events = []
    for i in range(count):
        kind = rng.choice(EVENT_TYPES)
        props: dict[str, Any] = {"store": f"store-{rng.randint(1, 12)}"}
        if kind == "purchase":
            props["amount"] = round(rng.uniform(2, 80), 2)
        elif kind == "review":
            props["stars"] = rng.randint(1, 5)
        events.append(
            {
                "id": f"{run}-{i}",
                "member": f"m{rng.randint(1, members)}",
                "type": kind,
                "occurred_at": (START + timedelta(minutes=i * 7 % 20000)).isoformat(),
                "properties": props,
            }
        )
    return events


async def setup_brand(database_url: str, *, with_challenges: bool) -> str:
    """Create a brand with the demo earning rules (and optionally 50 challenges); returns its secret key."""
    from engine.clock import SystemClock
    from engine.db import Database, create_engine
    from engine.rules_store import put_rule
    from engine.tenants import KeyKind, create_brand
    from web.demo import earning_rules

    db = Database(create_engine(database_url))
    try:
        now = SystemClock().now()
        brand, keys = await create_brand(db, name=f"bench-{uuid.uuid4().hex[:8]}", timezone="Europe/Rome", now=now)

        class _Clock:
            def now(self) -> datetime:
                return now

        class _Services:
            clock = _Clock()

        for spec in earning_rules(_Services()):  # type: ignore[arg-type]
            await put_rule(db, brand_id=brand.id, spec=spec, now=now)
        secret = next(k.key for k in keys if k.kind is KeyKind.SECRET)
    finally:
        await db.dispose()
    if with_challenges:
        from bench.challenge_program import fifty_challenges

        async with httpx.AsyncClient() as client:
            response = await client.put(
                f"{_BASE}/v1/program",
                json=fifty_challenges(),
                headers={"Authorization": f"Bearer {secret}"},
                timeout=60,
            )
            response.raise_for_status()
    return secret


_BASE = ""


async def analyze(dsn: str) -> None:
    """Refresh the planner's statistics (untimed), as autovacuum would on a long-lived database."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def post_all(base: str, key: str, bodies: list[Any], *, concurrency: int) -> float:
    """Send every body (events or batches) with ``concurrency`` clients; returns elapsed seconds."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/v1/events", json=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def raw_sql(dsn: str, events: list[dict[str, Any]]) -> float:
    """Insert the same event-log and ledger rows with asyncpg in 1000-row transactions; seconds taken."""
    conn = await asyncpg.connect(dsn)
    try:
        brand_id = await conn.fetchval(
            "INSERT INTO brands (slug, name, timezone, config_version, settings, created_at) "
            "VALUES ($1, 'raw', 'Europe/Rome', 1, '{}', now()) RETURNING id",
            f"raw-{uuid.uuid4().hex[:8]}",
        )
        names = sorted({e["member"] for e in events})
        await conn.executemany(
            "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, updated_at) "
            "VALUES ($1, $2, '', '', '{}', now(), now())",
            [(brand_id, n) for n in names],
        )
        ids = dict(await conn.fetch("SELECT external_id, id FROM members WHERE brand_id = $1", brand_id))
        now = datetime.now(UTC)
        started = time.perf_counter()
        for start in range(0, len(events), 1000):
            chunk = events[start : start + 1000]
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at, properties, result) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, '[]'::bytea)",
                    [
                        (
                            brand_id,
                            e["id"],
                            ids[e["member"]],
                            e["type"],
                            datetime.fromisoformat(e["occurred_at"]),
                            now,
                            _json(e["properties"]),
                        )
                        for e in chunk
                    ],
                )
                await conn.executemany(
                    "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at, local_day, created_at) "
                    "VALUES ($1, $2, $3, 10, 'rule', $4, '', $5, $6, $7)",
                    [
                        (
                            brand_id,
                            ids[e["member"]],
                            e["id"],
                            e["type"],
                            datetime.fromisoformat(e["occurred_at"]),
                            datetime.fromisoformat(e["occurred_at"]).date(),
                            now,
                        )
                        for e in chunk
                    ],
                )
        return time.perf_counter() - started
    finally:
        await conn.close()


def _json(value: Any) -> str:
    import msgspec

    return msgspec.json.encode(value).decode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--singles", type=int, default=2000, help="single-event requests per round")
    parser.add_argument("--batches", type=int, default=10, help="1000-event batches per round")
    args = parser.parse_args()
    have_challenges = (Path(__file__).parent / "challenge_program.py").exists()

    results: dict[str, list[float]] = {"single": [], "batch": [], "batch_50_challenges": [], "raw_sql": []}
    async with scratch_database() as (database_url, dsn):
        namespace = f"qlbench{uuid.uuid4().hex[:6]}"
        with server(database_url, namespace=namespace, workers=args.workers) as base:
            global _BASE
            _BASE = base
            for round_no in range(args.rounds):
                print(f"round {round_no + 1}/{args.rounds} …", file=sys.stderr, flush=True)
                key = await setup_brand(database_url, with_challenges=False)
                await analyze(dsn)
                singles = make_events(args.singles, members=2000, seed=round_no)
                elapsed = await post_all(base, key, singles, concurrency=16)
                results["single"].append(len(singles) / elapsed)

                key = await setup_brand(database_url, with_challenges=False)
                await analyze(dsn)
                events = make_events(args.batches * 1000, members=5000, seed=100 + round_no)
                batches = [{"events": events[i : i + 1000]} for i in range(0, len(events), 1000)]
                elapsed = await post_all(base, key, batches, concurrency=2)
                results["batch"].append(len(events) / elapsed)

                if have_challenges:
                    key = await setup_brand(database_url, with_challenges=True)
                    await analyze(dsn)
                    events = make_events(args.batches * 1000, members=5000, seed=200 + round_no)
                    batches = [{"events": events[i : i + 1000]} for i in range(0, len(events), 1000)]
                    elapsed = await post_all(base, key, batches, concurrency=2)
                    results["batch_50_challenges"].append(len(events) / elapsed)

                events = make_events(args.batches * 1000, members=5000, seed=300 + round_no)
                results["raw_sql"].append(len(events) / await raw_sql(dsn, events))
        # the server's Redis keys of this run
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for redis_key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(redis_key)
        client.close()

    raw = median(results["raw_sql"])
    rows = []
    summary: dict[str, Any] = {}
    for name, label in (
        ("single", "HTTP, 1 event/request, 16 clients"),
        ("batch", "HTTP, 1000-event batches, 2 clients"),
        ("batch_50_challenges", "HTTP, batches, 50 active challenges"),
        ("raw_sql", "raw SQL insert of the same rows (limit)"),
    ):
        values = results[name]
        if not values:
            rows.append([label, "n/a", "n/a", "n/a"])
            continue
        med = median(values)
        summary[name] = {"median_events_per_s": med, "rounds": values, "ratio_to_raw_sql": med / raw}
        rows.append([label, med, min(values), f"{med / raw:.2f}"])
    if results["batch_50_challenges"]:
        summary["challenges_cost"] = 1 - median(results["batch_50_challenges"]) / median(results["batch"])
        paired = [1 - c / b for b, c in zip(results["batch"], results["batch_50_challenges"], strict=True)]
        summary["challenges_cost_per_round"] = paired
        summary["challenges_cost_paired_median"] = median(paired)
    print_table(
        f"Ingestion on PostgreSQL ({args.workers} server workers, {args.rounds} rounds; events/s)",
        ["scenario", "median", "min", "× raw SQL"],
        rows,
    )
    if "challenges_cost" in summary:
        rounds = ", ".join(f"{c:.0%}" for c in summary["challenges_cost_per_round"])
        print(
            f"\n  50 challenges cost {summary['challenges_cost']:.0%} of the no-challenge batch throughput (goal ≤ 50%);"
            f" per round {rounds}, median {summary['challenges_cost_paired_median']:.0%}"
        )
    print(f"  batch goal ≥ 5,000 events/s: {'met' if summary['batch']['median_events_per_s'] >= 5000 else 'NOT met'}")
    path = write_json(
        "ingest", {"workers": args.workers, "rounds": args.rounds, "results": summary, "at": datetime.now(UTC)}
    )
    print(f"  wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    asyncio.run(main())
