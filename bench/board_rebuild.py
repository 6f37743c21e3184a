"""Redis memory per board member and the streamed rebuild of a 1,000,000-member board.

    .venv/bin/python bench/board_rebuild.py [--members 1000000] [--boards 3] [--rounds 3]

- Memory: ``INFO memory`` ``used_memory`` deltas. ``--boards`` boards hold the same members (one sorted
  set each); the brand's member directory is written once, whatever the number of boards. Reported:
  bytes per board member (the sorted sets, per board) and bytes per member of the brand's directory.
- Rebuild: ``rebuild_brand`` (what ``questline leaderboards rebuild`` runs) of the brand from SQL into an
  empty namespace, in a fresh process per round so its peak RSS (``ru_maxrss``) is the rebuild's own.
  Medians of ``--rounds``. Writes ``bench/results/board_rebuild.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REDIS_URL, scratch_database
from bench.leaderboards import load_members, used_memory
from engine.clock import SystemClock
from engine.db import Database, create_engine
from engine.ids import BrandId
from engine.tenants import create_brand
from leaderboards import keys
from leaderboards.models import BoardSpec, PointsMetric
from leaderboards.ranking import current_period
from leaderboards.rebuild import rebuild_brand
from leaderboards.service import Leaderboards
from leaderboards.store import BoardStore

RESULTS = Path(__file__).resolve().parent / "results" / "board_rebuild.json"


async def load_totals(
    pg_url: str, brand_id: int, boards: list[tuple[int, str, datetime, datetime]], first: int, count: int
) -> None:
    """COPY one total per member and board, and each board's open period row."""
    conn = await asyncpg.connect(pg_url)
    try:
        now = datetime.now(UTC)
        for board_id, period, starts_at, ends_at in boards:
            await conn.execute(
                "INSERT INTO leaderboard_periods (brand_id, board_id, period, starts_at, ends_at, members)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                brand_id,
                board_id,
                period,
                starts_at,
                ends_at,
                count,
            )
            records = (
                (brand_id, board_id, period, "", first + n, (n * 7919) % 1_000_003, now, now) for n in range(count)
            )
            await conn.copy_records_to_table(
                "leaderboard_totals",
                records=records,
                columns=["brand_id", "board_id", "period", "scope", "member_id", "units", "reached_at", "updated_at"],
            )
        await conn.execute("ANALYZE leaderboard_totals")
        await conn.execute("ANALYZE members")
    finally:
        await conn.close()


async def rebuild_once(url: str, brand_id: int, namespace: str) -> dict[str, Any]:
    """One rebuild in this process (the caller runs it in a fresh one): seconds, peak RSS, keys written."""
    db = Database(create_engine(url))
    redis = Redis.from_url(REDIS_URL)
    try:
        store = BoardStore(redis, namespace=namespace)
        started = time.perf_counter()
        report = await rebuild_brand(db, store, brand_id=BrandId(brand_id), now=datetime.now(UTC))
        seconds = time.perf_counter() - started
        return {
            "seconds": round(seconds, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "members": report.members,
            "keys": report.keys,
        }
    finally:
        await redis.aclose()
        await db.dispose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    members, boards = args.members, args.boards
    results: dict[str, Any] = {
        "members": members,
        "boards": boards,
        "rounds": args.rounds,
        "machine": "2 cores, shared",
    }
    redis = Redis.from_url(REDIS_URL)
    namespace = f"qlbench{uuid.uuid4().hex[:8]}"
    try:
        async with scratch_database("ql_bench_rebuild") as (url, pg_url):
            db = Database(create_engine(url))
            try:
                brand, _issued = await create_brand(
                    db, name="Bench", slug="bench", timezone="Europe/Rome", now=SystemClock().now()
                )
                lb = Leaderboards(db, redis, namespace=namespace, clock=SystemClock(), close_interval=None)
                periods = []
                for n in range(boards):
                    board, _ = await lb.put_board(
                        brand, BoardSpec(key=f"points{n}", title="Points", metric=PointsMetric())
                    )
                    period = current_period(board, datetime.now(UTC), brand.tz)
                    periods.append((board.id, period.id, period.starts_at, period.ends_at))
                await redis.unlink(*[k async for k in redis.scan_iter(match=f"{namespace}:*")] or ["-"])
                started = time.perf_counter()
                first = await load_members(pg_url, brand.id, members)
                await load_totals(pg_url, brand.id, periods, first, members)
                results["load_sql_s"] = round(time.perf_counter() - started, 2)
            finally:
                await db.dispose()

            rounds = []
            for index in range(args.rounds):
                run_namespace = f"{namespace}r{index}"
                before = await used_memory(redis)
                done = subprocess.run(
                    [sys.executable, __file__, "--rebuild-only", url, str(brand.id), run_namespace],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                one = json.loads(done.stdout.strip().splitlines()[-1])
                if done.stderr:
                    print(done.stderr[-6000:], file=sys.stderr)
                after = await used_memory(redis)
                directory = 0
                for key in (keys.member_ids(run_namespace, brand.id), keys.people(run_namespace, brand.id)):
                    directory += int(await redis.memory_usage(key, samples=0) or 0)
                one["board_bytes_per_member"] = round((after - before - directory) / (members * boards), 1)
                one["directory_bytes_per_member"] = round(directory / members, 1)
                rounds.append(one)
                # DEL, not UNLINK: a lazily freed set would shrink used_memory during the next round.
                await redis.delete(*[k async for k in redis.scan_iter(match=f"{run_namespace}:*", count=1000)])
                print(f"round {index + 1}: {one}", flush=True)
            results["rounds_detail"] = rounds
            for name in ("seconds", "peak_rss_mb", "board_bytes_per_member", "directory_bytes_per_member"):
                results[f"{name}_median"] = statistics.median(r[name] for r in rounds)
            results["seconds_per_million_members"] = round(results["seconds_median"] / (members * boards / 1e6), 2)
    finally:
        await redis.aclose()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--boards", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rebuild-only", nargs=3, metavar=("URL", "BRAND", "NAMESPACE"))
    parsed = parser.parse_args()
    if parsed.rebuild_only:
        url, brand_id, namespace = parsed.rebuild_only
        if os.environ.get("QUESTLINE_BENCH_PROFILE"):  # a cProfile of the rebuild, to stderr
            import cProfile
            import pstats

            profile = cProfile.Profile()
            found_one = profile.runcall(asyncio.run, rebuild_once(url, int(brand_id), namespace))
            pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
            print(json.dumps(found_one))
            sys.exit(0)
        print(json.dumps(asyncio.run(rebuild_once(url, int(brand_id), namespace))))
        sys.exit(0)
    found = asyncio.run(main(parsed))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps({k: v for k, v in found.items() if k != "rounds_detail"}, indent=2))
