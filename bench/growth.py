"""Growth bench: do ingest rates and console dashboard queries stay flat as ``event_log`` grows to 10M rows?

Usage: ``python bench/growth.py [--rows 10000000] [--rounds 3] [--singles 1500] [--batches 4]``

On a scratch PostgreSQL database migrated to head (``event_log`` and ``ledger`` hash-partitioned by brand,
migration ``0013_partitions``) with a real server (2 workers) and the real Redis:

1. rate at 0 rows: single events over HTTP (16 clients, earning rules only) and 1000-event batches
   (2 clients), medians of ``--rounds`` rounds, each on fresh event ids;
2. bulk load: ``--rows`` event-log rows and half as many ledger rows, generated inside PostgreSQL
   (``INSERT … SELECT`` over ``generate_series`` and ``unnest`` of member arrays: no client round trip per
   row), spread over 100 brands, of which the measured brand holds 10% (a big brand), dated over a year;
   then ``ANALYZE`` as autovacuum would;
3. rate at ``--rows``, the same way, and the ratio to the rate at 0 (goal ≥ 0.8);
4. the console dashboard's queries (``web.pages.stats``: overview of 14 and 90 days, completions,
   rarity) for the big brand, median of 5 runs each (goal < 200 ms).

Results go to ``bench/results/growth.json``. The machine is shared (2 cores, other work running): read
the same-run ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest
from bench.common import REDIS_URL, median, print_table, scratch_database, server, write_json

FILLER_BRANDS = 99
MEMBERS_PER_BRAND = 1000
BIG_SHARE = 0.10
CHUNK = 1_000_000


async def rates(base: str, database_url: str, dsn: str, args: argparse.Namespace, seed: int) -> dict[str, list[float]]:
    """Single-event and batch rates, one value per round, on the big brand (its key is set by the caller)."""
    found: dict[str, list[float]] = {"single": [], "batch": []}
    for round_no in range(args.rounds):
        singles = ingest.make_events(args.singles, members=MEMBERS_PER_BRAND, seed=seed + round_no)
        elapsed, _cpu, failed = await ingest.post_raw(base, args.key, singles, concurrency=16)
        if failed:
            raise RuntimeError(f"{failed} single-event requests failed")
        found["single"].append(len(singles) / elapsed)
        events = ingest.make_events(args.batches * 1000, members=MEMBERS_PER_BRAND, seed=seed + 50 + round_no)
        batches = [{"events": events[i : i + 1000]} for i in range(0, len(events), 1000)]
        found["batch"].append(len(events) / await ingest.post_all(base, args.key, batches, concurrency=2))
    return found


async def bulk_load(dsn: str, *, big_brand: int, rows: int) -> dict[str, float]:
    """Grow ``event_log`` by ``rows`` and ``ledger`` by ``rows / 2`` inside PostgreSQL; returns seconds taken."""
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        brands = [
            r["id"]
            for r in await conn.fetch(
                "INSERT INTO brands (slug, name, timezone, config_version, settings, created_at)"
                " SELECT 'fill-' || g || '-' || $1, 'filler', 'Europe/Rome', 1, '{}', now()"
                " FROM generate_series(1, $2) g RETURNING id",
                uuid.uuid4().hex[:6],
                FILLER_BRANDS,
            )
        ]
        await conn.execute(
            "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, updated_at,"
            " joined_via) SELECT b, 'm' || g, '', '', '{}', now(), now(), '' FROM unnest($1::bigint[]) b,"
            " generate_series(1, $2) g ON CONFLICT (brand_id, external_id) DO NOTHING",
            [big_brand, *brands], MEMBERS_PER_BRAND,
        )  # fmt: skip
        big = [r["id"] for r in await conn.fetch("SELECT id FROM members WHERE brand_id = $1", big_brand)]
        other = await conn.fetch("SELECT id, brand_id FROM members WHERE brand_id = ANY($1::bigint[])", brands)
        other_ids, other_brands = [r["id"] for r in other], [r["brand_id"] for r in other]
        members_done = time.perf_counter()
        start = datetime.now(UTC) - timedelta(days=365)
        tag = uuid.uuid4().hex[:6]
        for table, total in (("event_log", rows), ("ledger", rows // 2)):
            for low in range(0, total, CHUNK):
                high = min(total, low + CHUNK) - 1
                await conn.execute(
                    _fill(table), low, high, big_brand, big, other_ids, other_brands, start, tag, BIG_SHARE
                )
        loaded = time.perf_counter()
        await conn.execute("ANALYZE")
        return {
            "members_s": members_done - started,
            "rows_s": loaded - members_done,
            "analyze_s": time.perf_counter() - loaded,
        }
    finally:
        await conn.close()


def _fill(table: str) -> str:
    """One ``INSERT … SELECT`` of rows ``$1..$2``: row ``g`` goes to the big brand when ``g`` falls in its share."""
    pick = (
        "SELECT g, (g % 1000) < ($9::float8 * 1000) AS mine, $7::timestamptz + (g % 31536000) * interval '1 second' AS at"
        " FROM generate_series($1::bigint, $2::bigint) g"
    )
    brand = "CASE WHEN mine THEN $3::bigint ELSE ($6::bigint[])[1 + g % cardinality($6::bigint[])] END"
    member = "CASE WHEN mine THEN ($4::bigint[])[1 + g % cardinality($4::bigint[])] ELSE ($5::bigint[])[1 + g % cardinality($5::bigint[])] END"
    if table == "event_log":
        return (
            "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at, properties, result)"
            f" SELECT {brand}, 'grow-' || $8 || '-' || g, {member}, 'visit', at, at, '{{\"store\": \"s1\"}}', '[]'"
            f" FROM ({pick}) s"
        )
    return (
        "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at, local_day,"
        f" created_at, kind, available_at) SELECT {brand}, {member}, 'grow-' || $8 || '-' || g, 5, 'rule', 'visit',"
        f" '', at, (at AT TIME ZONE 'Europe/Rome')::date, at, 'earn', at FROM ({pick}) s"
    )


async def dashboard_ms(database_url: str, brand_id: int) -> dict[str, float]:
    """Median milliseconds of each console dashboard query for the brand (5 runs each, after one warm-up)."""
    from zoneinfo import ZoneInfo

    from engine.db import Database, create_engine
    from engine.ids import BrandId
    from engine.periods import local_midnight
    from web.pages import stats

    db = Database(create_engine(database_url))
    tz, now, brand = ZoneInfo("Europe/Rome"), datetime.now(UTC), BrandId(brand_id)
    queries: dict[str, Any] = {
        "overview_14_days": lambda: stats.overview(db, brand_id=brand, tz=tz, now=now, days=14),
        "overview_90_days": lambda: stats.overview(db, brand_id=brand, tz=tz, now=now, days=90),
        "completions": lambda: stats.completions(db, brand_id=brand, since=local_midnight(now.date(), tz)),
        "rarity": lambda: stats.rarity(db, brand_id=brand),
    }
    found: dict[str, float] = {}
    try:
        for name, query in queries.items():
            await query()
            times = []
            for _ in range(5):
                started = time.perf_counter()
                await query()
                times.append((time.perf_counter() - started) * 1000)
            found[name] = median(times)
    finally:
        await db.dispose()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="event-log rows to grow by (ledger: half)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--singles", type=int, default=1500, help="single-event requests per round")
    parser.add_argument("--batches", type=int, default=4, help="1000-event batches per round")
    args = parser.parse_args()
    async with scratch_database("ql_growth") as (database_url, dsn):
        namespace = f"qlgrowth{uuid.uuid4().hex[:6]}"
        with server(database_url, namespace=namespace, workers=args.workers) as base:
            ingest._BASE = base
            args.key = await ingest.setup_brand(database_url, with_challenges=False)
            conn = await asyncpg.connect(dsn)
            brand_id = await conn.fetchval("SELECT max(id) FROM brands")
            await conn.close()
            print("rates at 0 rows …", file=sys.stderr, flush=True)
            await ingest.analyze(dsn)
            empty = await rates(base, database_url, dsn, args, seed=0)
            dashboard_empty = await dashboard_ms(database_url, brand_id)
            print(f"loading {args.rows:,} event-log rows …", file=sys.stderr, flush=True)
            load = await bulk_load(dsn, big_brand=brand_id, rows=args.rows)
            print(f"rates at {args.rows:,} rows …", file=sys.stderr, flush=True)
            grown = await rates(base, database_url, dsn, args, seed=1000)
            dashboard_grown = await dashboard_ms(database_url, brand_id)
            conn = await asyncpg.connect(dsn)
            sizes = {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in ("event_log", "ledger")}
            # Bytes on disk per row (heap, TOAST and indexes of every partition), for docs/scaling.md's model.
            footprint = {
                table: await conn.fetchval(
                    "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree($1::regclass)",
                    table,
                )
                for table in ("event_log", "ledger")
            }
            bytes_per_row = {table: footprint[table] / max(1, sizes[table]) for table in sizes}
            big_rows = await conn.fetchval("SELECT count(*) FROM event_log WHERE brand_id = $1", brand_id)
            await conn.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for redis_key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(redis_key)
        client.close()

    summary: dict[str, Any] = {}
    rows = []
    for name, label in (
        ("single", "HTTP, 1 event/request, 16 clients"),
        ("batch", "HTTP, 1000-event batches, 2 clients"),
    ):
        at_0, at_n = median(empty[name]), median(grown[name])
        summary[name] = {
            "at_0": at_0,
            "at_n": at_n,
            "ratio": at_n / at_0,
            "rounds_0": empty[name],
            "rounds_n": grown[name],
        }
        rows.append([label, at_0, at_n, f"{at_n / at_0:.2f}"])
    print_table(
        f"Ingest as event_log grows to {sizes['event_log']:,} rows ({args.rounds} rounds; events/s; goal ≥ 0.8)",
        ["scenario", "at 0", f"at {args.rows:,}", "ratio"],
        rows,
    )
    print_table(
        f"Console dashboard queries, brand with {big_rows:,} events (median ms; goal < 200)",
        ["query", "at 0", f"at {args.rows:,}"],
        [[name, dashboard_empty[name], dashboard_grown[name]] for name in dashboard_grown],
    )
    print_table(
        "Bytes on disk per row (heap, TOAST, indexes of every partition)",
        ["table", "rows", "bytes", "bytes/row"],
        [[t, sizes[t], footprint[t], bytes_per_row[t]] for t in ("event_log", "ledger")],
    )
    path = write_json(
        "growth",
        {
            "rows": args.rows,
            "table_rows": sizes,
            "big_brand_event_rows": big_rows,
            "workers": args.workers,
            "rounds": args.rounds,
            "singles_per_round": args.singles,
            "batches_per_round": args.batches,
            "load_seconds": load,
            "bytes_on_disk": footprint,
            "bytes_per_row": bytes_per_row,
            "rates": summary,
            "dashboard_ms": {"at_0": dashboard_empty, "at_n": dashboard_grown},
            "machine": "2 cores shared with other sessions' work; same-run ratios",
            "at": datetime.now(UTC),
        },
    )
    print(f"  wrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
