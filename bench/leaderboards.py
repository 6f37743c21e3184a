"""Leaderboards at 1,000,000 members on the real Redis: updates/s and reads/s, each beside the raw redis-py limit.

Run: ``.venv/bin/python bench/leaderboards.py [--members 1000000] [--rounds 5] [--seconds 3] [--workers 2]``.
Prints a table and writes ``bench/results/leaderboards.json``. Needs the real PostgreSQL and Redis; uses a
throw-away database and its own Redis namespace, both removed at the end. Loopback traffic only.

- updates: absolute totals written through ``BoardStore.apply`` (MULTI: sentinel check, the rebuild-log
  append, ZADD, rank count, ZCARD) by 50 concurrent tasks, beside the same five commands in one raw
  redis-py pipeline (the limit); the four without the log's ``RPUSHX`` are also measured, for information;
- reads: ``GET /v1/leaderboards/<board>?limit=10&around=<member>&k=5`` (top 10 + the member's rank and
  percentile + ±5 neighbours, with labels) through the HTTP API of a real ``questline serve`` (2 worker
  processes by default: the machine's cores, which the load generator and Redis share) on PostgreSQL
  and Redis, over 50 keep-alive connections, for a random member of the million each time; beside the
  server's own script called raw from 50 concurrent tasks of this process (the limit): it takes the key's
  rate-limit token, then makes the same reads (ZRANGE top, ZREVRANK, ZSCORE, ZRANGE around, ZCOUNT, the
  labels), exactly as every plain read over HTTP does;
- memory per member: ``used_memory`` deltas around loading the sorted set, and the board's directory
  (external id → member, member → label) the read path resolves members with, divided by the members.

Raw and ours alternate round by round, so load from other processes on the machine hits both alike, and
each read round records the CPU time every party used (this process, the server's processes, Redis,
and the machine's other processes) to say where the time goes. ``--batched`` (default) also measures,
for information, the raw script auto-pipelined the way the server sends it, and the read script alone
without the token (the limit before the read took its token in the same call).
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
from bench.measure import CONCURRENCY, HttpConnection, Round, cpu_per_read, measured, run_for
from engine.clock import SystemClock
from engine.db import Database, create_engine
from engine.keys import rate_limit_bucket
from engine.tenants import create_brand
from leaderboards import keys
from leaderboards.models import BoardSpec, PointsMetric
from leaderboards.script_batch import ScriptBatch
from leaderboards.scripts import GATED_READ_SCRIPT, READ_SCRIPT
from leaderboards.service import Leaderboards
from leaderboards.slots import Listing, Slot, Write, standing_entry

QUIET = 0.2
"""Other processes using fewer cores than this during a round leave the machine to the benchmark."""
BOARD = "all-points"
TIES = "competition"
"""The board's tie policy (the default), which the limit passes to the script as the server does."""
BUCKET = 1_000_000
"""The limit's token bucket: refill rate and size, the server's under the bench (``bench.common.server``)."""


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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    namespace = f"qlbench{uuid.uuid4().hex[:8]}"
    members = args.members
    results: dict[str, Any] = {"members": members, "concurrency": CONCURRENCY, "rounds": args.rounds}
    redis = Redis.from_url(REDIS_URL)
    try:
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
                # The brand's directory, as the processor and a rebuild write it (member m<n> is "Member <n>").
                started = time.perf_counter()
                await lb.store.add_directory(
                    brand.id,
                    [
                        Listing(
                            brand_id=brand.id, member_id=first_id + n, external_id=f"m{n}", display_name=f"Member {n}"
                        )
                        for n in range(members)
                    ],
                )
                results["load_directory_s"] = round(time.perf_counter() - started, 2)
                results["directory_bytes_per_member"] = round((await used_memory(redis) - after) / members, 1)

                # --- updates ---------------------------------------------------------------------------
                ready_key = keys.ready(namespace, brand.id)

                log_key = keys.rebuild_log(namespace, brand.id)

                def raw_pipeline(logged: bool):  # type: ignore[no-untyped-def]
                    async def raw_update(r: random.Random) -> None:
                        member_id = first_id + r.randrange(members)
                        score = float(r.randint(0, 1_000_000))
                        async with redis.pipeline(transaction=True) as pipe:
                            pipe.exists(ready_key)
                            if logged:  # the rebuild-log append the store queues with every write
                                pipe.rpushx(log_key, standing_entry(BOARD, slot.period.id, "", member_id))
                            pipe.zadd(key, {str(member_id).encode(): score})
                            pipe.zcount(key, f"({int(score)}", "+inf")
                            pipe.zcard(key)
                            await pipe.execute()

                    return raw_update

                async def store_update(r: random.Random) -> None:
                    write = Write(
                        slot=slot,
                        member_id=first_id + r.randrange(members),
                        units=r.randint(0, 1_000_000),
                        reached_at=datetime.now(UTC),
                    )
                    await lb.store.apply([write])

                raw_updates: list[float] = []
                store_updates: list[float] = []
                unlogged_updates: list[float] = []
                for _ in range(args.rounds):  # alternating, as the reads below
                    raw_updates.append(await run_for(args.seconds, raw_pipeline(logged=True)))
                    store_updates.append(await run_for(args.seconds, store_update))
                    unlogged_updates.append(await run_for(args.seconds, raw_pipeline(logged=False)))

                # The limit runs the server's own read script on the same keys: equal Redis work, by construction.
                # The server's script takes the key's rate-limit token and reads, in one call; so does the limit
                # (a bucket of its own, as large as the server's under the bench). The read alone is measured too.
                raw_script = redis.register_script(GATED_READ_SCRIPT)
                batched_script = ScriptBatch(redis, raw_script)
                plain_script = redis.register_script(READ_SCRIPT)
                ids_key, names_key = lb.store.directory_keys(brand.id)
                plain_keys = [key, key, ids_key, names_key, keys.board_ready(namespace, brand.id, BOARD)]
                read_keys = [*plain_keys, rate_limit_bucket(namespace, brand.id, 0)]
                bucket_args = [BUCKET, BUCKET]
            finally:
                await db.dispose()

            # --- reads ---------------------------------------------------------------------------------
            # Raw and HTTP rounds alternate, so load from other processes on the machine hits both alike;
            # each round records the CPU each party used (this process, the server's processes, Redis, others).
            async def raw_read(r: random.Random) -> None:
                await raw_script(keys=read_keys, args=[*bucket_args, 0, 10, 5, TIES, f"m{r.randrange(members)}"])

            async def batched_raw_read(r: random.Random) -> None:
                await batched_script(keys=read_keys, args=[*bucket_args, 0, 10, 5, TIES, f"m{r.randrange(members)}"])

            async def plain_raw_read(r: random.Random) -> None:
                await plain_script(keys=plain_keys, args=[0, 10, 5, TIES, f"m{r.randrange(members)}"])

            with server(url, namespace=namespace, workers=args.workers) as base:
                host, port = base.removeprefix("http://").split(":")
                connections = [
                    HttpConnection(host, int(port), f"Authorization: Bearer {secret}\r\n") for _ in range(CONCURRENCY)
                ]
                errors = 0

                def http_worker(index_of: dict[int, int]):  # type: ignore[no-untyped-def]
                    async def read(r: random.Random) -> None:
                        nonlocal errors
                        conn = connections[index_of.setdefault(id(r), len(index_of))]
                        status, body = await conn.get(
                            f"/v1/leaderboards/{BOARD}?limit=10&around=m{r.randrange(members)}&k=5"
                        )
                        if status != 200:
                            errors += 1
                        elif args.check and r.random() < 0.01:
                            check_page(json.loads(body))

                    return read

                status, body = await connections[0].get(f"/v1/leaderboards/{BOARD}?limit=10&around=m{members // 2}&k=5")
                assert status == 200, body
                check_page(json.loads(body))
                await run_for(1.0, http_worker({}))  # warm-up: connections, key cache, definitions, EVALSHA
                gated = await raw_script(keys=read_keys, args=[*bucket_args, 0, 10, 5, TIES, f"m{members // 2}"])
                assert gated[0] == 1, gated  # the token was taken…
                reply = gated[2]  # …and the read made
                assert reply[0] == 1, reply  # the board is ready: the script read it
                assert len(reply[2]) == 20, reply  # top 10 with scores
                assert len(reply[6]) == 22, reply  # ±5 around the member, with scores
                assert all(reply[9]), reply  # every member shown has a label
                await run_for(0.5, raw_read)
                redis_pid = int((await redis.info("server"))["process_id"])
                raw_reads: list[Round] = []
                batched_reads: list[Round] = []
                plain_reads: list[Round] = []
                http_reads: list[Round] = []
                for _ in range(args.rounds):
                    raw_reads.append(await measured(args.seconds, raw_read, redis_pid))
                    for conn in connections:  # the server drops connections idle for 5 s: open them again
                        await conn.close()
                    await run_for(0.3, http_worker({}))
                    http_reads.append(await measured(args.seconds, http_worker({}), redis_pid))
                    if args.batched:
                        batched_reads.append(await measured(args.seconds, batched_raw_read, redis_pid))
                        plain_reads.append(await measured(args.seconds, plain_raw_read, redis_pid))
                for conn in connections:
                    await conn.close()
                results["http_errors"] = errors

    finally:  # the run's keys go even when it fails
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
        # informative: the pipeline without the rebuild-log append (the limit before the streaming rebuild)
        "raw_pipeline_unlogged_per_s": [round(x) for x in unlogged_updates],
        "median_raw_unlogged": round(median(unlogged_updates)),
        "ratio_to_unlogged": round(median(store_updates) / median(unlogged_updates), 3),
    }
    results["reads"] = {
        "raw_lua_per_s": [round(r.rate) for r in raw_reads],
        "http_api_per_s": [round(r.rate) for r in http_reads],
        "median_raw": round(median([r.rate for r in raw_reads])),
        "median_http": round(median([r.rate for r in http_reads])),
        "ratio": round(median([r.rate for r in http_reads]) / median([r.rate for r in raw_reads]), 3),
        # Each HTTP round against the raw round just before it: robust to load that drifts over the run.
        "ratio_of_pairs": [round(h.rate / r.rate, 3) for r, h in zip(raw_reads, http_reads, strict=True)],
        "median_ratio_of_pairs": round(
            median([h.rate / r.rate for r, h in zip(raw_reads, http_reads, strict=True)]), 3
        ),
        "pairs": [
            {
                "raw_per_s": round(r.rate),
                "http_per_s": round(h.rate),
                "other_cores_raw": round(r.cores["others"], 2),
                "other_cores_http": round(h.cores["others"], 2),
            }
            for r, h in zip(raw_reads, http_reads, strict=True)
        ],
        # The pairs the machine's other processes left alone (< QUIET cores in both rounds), as the issue means it.
        "quiet_pairs": [
            round(h.rate / r.rate, 3)
            for r, h in zip(raw_reads, http_reads, strict=True)
            if r.cores["others"] < QUIET and h.cores["others"] < QUIET
        ],
        "server_workers": args.workers,
        "cpu_us_per_read": {
            "raw": cpu_per_read(raw_reads),
            "http": cpu_per_read(http_reads),
        },
    }
    if batched_reads:
        results["reads"]["raw_lua_autopipelined_per_s"] = [round(r.rate) for r in batched_reads]
        results["reads"]["median_raw_autopipelined"] = round(median([r.rate for r in batched_reads]))
        results["reads"]["cpu_us_per_read"]["raw_autopipelined"] = cpu_per_read(batched_reads)
        results["reads"]["raw_lua_ungated_per_s"] = [round(r.rate) for r in plain_reads]
        results["reads"]["median_raw_ungated"] = round(median([r.rate for r in plain_reads]))
        results["reads"]["cpu_us_per_read"]["raw_ungated"] = cpu_per_read(plain_reads)
    return results


def check_page(page: dict[str, Any]) -> None:
    """The shape of a read: 10 entries with labels, the member's rank, 11 neighbours around them."""
    assert len(page["entries"]) == 10
    assert page["entries"][0]["rank"] == 1
    assert page["entries"][0]["label"].startswith("Member ")
    assert page["me"]["rank"]
    assert page["me"]["label"].startswith("Member ")
    assert len(page["around"]) == 11
    assert page["source"] == "redis"


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
                f"read top10+rank+around±5 via HTTP ({reads['server_workers']} workers), random member of all",
                float(reads["median_http"]),
                float(reads["median_raw"]),
                reads["ratio"],
            ],
        ],
    )
    print(
        f"\n  memory per member: {results['memory_bytes_per_member']} bytes in the sorted set,"
        f" {results['directory_bytes_per_member']} bytes in the brand's directory (once per brand, INFO memory used_memory deltas)"
    )
    print(
        f"  loading: {results['load_sql_s']} s members into PostgreSQL (COPY), {results['load_redis_s']} s sorted set"
        f" (pipelined ZADD), {results['load_directory_s']} s directory (pipelined HSET, renamed into place)"
    )
    print(
        f"  updates: the limit is the store's five commands (EXISTS, RPUSHX of the rebuild log, ZADD, ZCOUNT, ZCARD);"
        f" without the RPUSHX {updates['median_raw_unlogged']:,}/s (BoardStore = {updates['ratio_to_unlogged']:.2f} of it)"
    )
    print(f"  HTTP errors: {results['http_errors']}")
    print(
        f"  reads, HTTP/raw of each pair of rounds: {', '.join(f'{x:.2f}' for x in reads['ratio_of_pairs'])}"
        f" (median {reads['median_ratio_of_pairs']:.2f})"
    )
    quiet = reads["quiet_pairs"]
    print(
        f"  pairs with other processes under {QUIET} cores in both rounds: {len(quiet)} of {len(reads['ratio_of_pairs'])}"
        + (f", HTTP/raw median {median(quiet):.2f}" if quiet else "")
    )
    cpu = reads["cpu_us_per_read"]
    rows = [("raw Lua (the limit)", cpu["raw"]), ("HTTP API", cpu["http"])]
    if "raw_autopipelined" in cpu:
        print(
            f"  informative: the raw script auto-pipelined as the server sends it: {reads['median_raw_autopipelined']:,}/s"
            f" (HTTP = {reads['median_http'] / reads['median_raw_autopipelined']:.2f} of it)"
        )
        rows.append(("raw Lua auto-pipelined", cpu["raw_autopipelined"]))
    if "raw_ungated" in cpu:
        print(
            f"  informative: the read script alone, without the token: {reads['median_raw_ungated']:,}/s"
            f" (HTTP = {reads['median_http'] / reads['median_raw_ungated']:.2f} of it)"
        )
        rows.append(("raw Lua, read without the token", cpu["raw_ungated"]))
    print_table(
        "CPU per read (µs, medians of the rounds; rounds alternate raw / HTTP)",
        ["reads by", "bench process", "server processes", "Redis", "other load (cores)"],
        [[name, c["bench"], c["server"], c["redis"], c["others_cores"]] for name, c in rows],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="Server worker processes (the machine has 2 cores).")
    parser.add_argument(
        "--batched",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also measure the raw script auto-pipelined the way the server sends it (informative).",
    )
    parser.add_argument("--check", action="store_true", help="Decode 1%% of the HTTP answers and check their shape.")
    outcome = asyncio.run(main(parser.parse_args()))
    report(outcome)
    print(f"\n  written to {write_json('leaderboards', outcome)}")
