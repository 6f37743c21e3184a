"""Ingestion throughput through the real HTTP server on PostgreSQL, beside a raw-SQL insert of the same rows.

Run: ``.venv/bin/python bench/ingest.py [--rounds 3] [--workers 2]``. Prints a table and writes
``bench/results/ingest.json``. Needs the real PostgreSQL and Redis (see README).

Scenarios (each on a fresh brand, medians over rounds):
- single: one event per request, 16 concurrent clients, earning rules only;
- single + 50 challenges and a board: the same with the 50 challenges below and one board;
- duplicates: the rules-only single requests sent again, so each answers ``duplicate`` (one indexed look-up,
  no transaction), against the same per-event limit;
- raw per event (the single-event limit): asyncpg, 16 connections, one transaction per event doing a
  member upsert, an event insert with its unique key, a ledger insert, and the commit;
- batch: 1000-event batches, 2 concurrent clients;
- batch, disjoint members (for information): the same, each client's batches on its own half of the members,
  so no two concurrent batches share a member and neither waits for the other's member locks; set beside
  ``batch`` it shows what those waits cost;
- batch + 50 challenges: the same with 50 active challenges of mixed rule types (when the challenges
  package provides ``bench/challenge_program.py``);
- raw SQL: asyncpg inserting the same event-log and ledger rows in 1000-row transactions, ``executemany``;
- raw unnest (the batch limit): the same rows as one ``unnest`` insert per table and transaction, the
  fastest raw form (about 3× ``executemany``).

Every request is sent by a raw asyncio HTTP/1.1 keep-alive client (one connection per client task, the
body encoded before the clock starts), which costs far less CPU per request than httpx; the client's CPU
time is reported so one can see it is not the bottleneck. (Batches were sent with httpx until this was
measured: it encoded each 1000-event body inside the timed run, about 9-10% of the elapsed time of one
core, on the two cores the server and PostgreSQL share; the raw client uses about 1%.)

Before the server starts, the scratch database gets a baseline of other brands' rows in every partition
(``bench/baseline.py``), so the server's connections plan their foreign-key checks against tables that
are not empty, as in production. Before each HTTP scenario the scratch database is ``ANALYZE``d, as autovacuum keeps a long-lived one: on
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

from bench.baseline import seed_baseline
from bench.common import (
    BENCH_SECRET,
    REDIS_URL,
    median,
    print_table,
    raw_brand,
    scratch_database,
    server,
    server_cpu_seconds,
    write_json,
)
from bench.raw_unnest import raw_unnest

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


async def setup_brand(database_url: str, *, with_challenges: bool, board: bool = False) -> str:
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
    if board:
        async with httpx.AsyncClient() as client:
            body = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
            response = await client.put(
                f"{_BASE}/v1/leaderboards/visits", json=body, headers={"Authorization": f"Bearer {secret}"}
            )
            response.raise_for_status()
    return secret


_BASE = ""


async def setup_program_brand(database_url: str, *, namespace: str) -> str:
    """A brand with the demo's whole program (bench/README.md); returns its secret key.

    Its earning rules, challenges, badges, boards, rewards, referral policy, tiers and segments, seeded as
    ``questline demo`` seeds them, on a brand of its own (the demo brand's slug and keys are fixed).
    """
    from engine.clock import SystemClock
    from engine.rules_store import put_rule
    from engine.settings import load_settings
    from engine.tenants import KeyKind, create_brand
    from web.demo import (
        MEMBERS,
        badges,
        challenges,
        earning_rules,
        enrollment,
        leaderboards,
        rewards,
        segments,
        tiers,
    )
    from web.wiring import open_services

    settings = load_settings(
        {
            "QUESTLINE_DATABASE_URL": database_url,
            "QUESTLINE_REDIS_URL": REDIS_URL,
            "QUESTLINE_REDIS_NAMESPACE": namespace,
            "QUESTLINE_SECRET": BENCH_SECRET,
            "QUESTLINE_AUTO_MIGRATE": "false",
        }
    )
    async with open_services(settings, migrate=False) as services:
        now = SystemClock().now()
        brand, keys = await create_brand(services.db, name=f"bench-{uuid.uuid4().hex[:8]}", timezone="Europe/Rome",
                                         now=now)  # fmt: skip
        for spec in earning_rules(services):
            await put_rule(services.db, brand_id=brand.id, spec=spec, now=now)
        for seed in (challenges.seed_demo, badges.seed_demo, leaderboards.seed_demo, rewards.seed_demo,
                     enrollment.seed_demo, tiers.seed_demo):  # fmt: skip
            await seed(services, brand)
        # the double-points experiment on the demo's members (as `questline demo`), not on the bench's
        await segments.seed_demo(services, brand, members=[external_id for external_id, *_ in MEMBERS])
    return next(k.key for k in keys if k.kind is KeyKind.SECRET)


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


async def post_raw(
    base: str, key: str, bodies: list[Any], *, concurrency: int, lanes: bool = False
) -> tuple[float, float, int]:
    """Send events or batches over raw HTTP/1.1 keep-alive connections; returns (elapsed s, client CPU s, failures).

    Each body is encoded before the clock starts. With ``lanes`` client ``i`` sends bodies ``i``,
    ``i + concurrency``, … in turn (a client's own series); otherwise every client takes the next body left.
    A failed request (not 200) is counted, not retried, and the run goes on.
    """
    host, port = base.removeprefix("http://").split(":")
    encoded = [_json(body).encode() for body in bodies]
    head = f"POST /v1/events HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
    head += "Content-Type: application/json\r\nContent-Length: "
    shared = [head.encode() + str(len(b)).encode() + b"\r\n\r\n" + b for b in encoded]
    queues = [shared[i::concurrency][::-1] for i in range(concurrency)] if lanes else [shared[::-1]] * concurrency
    failures: list[bytes] = []

    async def client(requests: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while requests:
                writer.write(requests.pop())
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                if b" 200 " not in status:
                    failures.append(body[:300])
        finally:
            writer.close()

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(queue) for queue in queues))
    if failures:
        print(f"  {len(failures)} request(s) failed, e.g. {failures[0]!r}", file=sys.stderr)
    return time.perf_counter() - started, time.process_time() - cpu, len(failures)


async def raw_per_event(dsn: str, events: list[dict[str, Any]], *, connections: int = 16) -> float:
    """The single-event limit: one asyncpg transaction per event on 16 connections; seconds taken.

    Each transaction upserts the member (``ON CONFLICT DO UPDATE … RETURNING id``, which also locks it),
    inserts the event (unique key), inserts a ledger row and commits.
    """
    setup = await asyncpg.connect(dsn)
    try:
        brand_id, _ = await raw_brand(setup)
    finally:
        await setup.close()
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    queue = list(reversed(events))
    now = datetime.now(UTC)

    async def worker() -> None:
        async with pool.acquire() as conn:
            while queue:
                e = queue.pop()
                at = datetime.fromisoformat(e["occurred_at"])
                async with conn.transaction():
                    member_id = await conn.fetchval(
                        "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at,"
                        " updated_at) VALUES ($1, $2, '', '', '{}', $3, $3) ON CONFLICT (brand_id, external_id)"
                        " DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id",
                        brand_id, e["member"], now,
                    )  # fmt: skip
                    await conn.execute(
                        "INSERT INTO event_log (brand_id, event_key, member_id, type, occurred_at, received_at,"
                        " properties, result) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, '[]'::bytea)",
                        brand_id, e["id"], member_id, e["type"], at, now, _json(e["properties"]),
                    )  # fmt: skip
                    await conn.execute(
                        "INSERT INTO ledger (brand_id, member_id, event_key, points, source, key, reason, occurred_at,"
                        " local_day, created_at) VALUES ($1, $2, $3, 10, 'rule', $4, '', $5, $6, $7)",
                        brand_id, member_id, e["id"], e["type"], at, at.date(), now,
                    )  # fmt: skip

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return time.perf_counter() - started
    finally:
        await pool.close()


async def raw_sql(dsn: str, events: list[dict[str, Any]]) -> float:
    """Insert the same event-log and ledger rows with asyncpg in 1000-row transactions; seconds taken."""
    conn = await asyncpg.connect(dsn)
    try:
        brand_id, ids = await raw_brand(conn, members=sorted({e["member"] for e in events}))
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
    parser.add_argument("--only-single", action="store_true", help="only the single-event scenarios and their limit")
    parser.add_argument(
        "--only-batches", action="store_true", help="only the batch scenarios and their limit (for A/B runs of batches)"
    )
    parser.add_argument(
        "--no-program", dest="program", action="store_false", help="skip the batches of the demo's whole program"
    )
    parser.add_argument(
        "--no-disjoint", dest="disjoint", action="store_false", help="skip the batches on disjoint members"
    )
    args = parser.parse_args()
    have_challenges = (Path(__file__).parent / "challenge_program.py").exists()

    results: dict[str, list[float]] = {
        "single": [], "single_50_challenges_board": [], "duplicates": [], "raw_per_event": [],
        "batch": [], "batch_disjoint": [], "batch_50_challenges": [], "batch_program": [], "raw_sql": [],
        "raw_unnest": [],
    }  # fmt: skip
    client_cpu: dict[str, list[float]] = {"single": [], "single_50_challenges_board": [], "duplicates": []}
    failures = {"single": 0, "single_50_challenges_board": 0, "duplicates": 0}
    server_ms: dict[str, list[float]] = {"single": [], "batch": []}
    async with scratch_database() as (database_url, dsn):
        await seed_baseline(dsn)  # other brands' rows, as a production database has (bench/baseline.py)
        namespace = f"qlbench{uuid.uuid4().hex[:6]}"
        with server(database_url, namespace=namespace, workers=args.workers) as base:
            global _BASE
            _BASE = base
            port = int(base.rsplit(":", 1)[1])

            async def batches_on(name: str, key: str, seed: int, *, disjoint: bool = False) -> None:
                """One batch scenario: ``args.batches`` 1000-event batches by 2 clients, on a fresh brand."""
                await analyze(dsn)
                events = make_events(args.batches * 1000, members=5000, seed=seed)
                if disjoint:  # client 0 sends batches of members 1-2500, client 1 of members 2501-5000
                    halves = ([e for e in events if int(e["member"][1:]) <= 2500],
                              [e for e in events if int(e["member"][1:]) > 2500])  # fmt: skip
                    lanes = [[half[i : i + 1000] for i in range(0, len(half), 1000)] for half in halves]
                    chunks = [chunk for pair in zip(*lanes, strict=False) for chunk in pair]
                else:
                    chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]
                sent = sum(len(chunk) for chunk in chunks)
                server_cpu = server_cpu_seconds(port)
                elapsed, cpu, failed = await post_raw(
                    base, key, [{"events": chunk} for chunk in chunks], concurrency=2, lanes=disjoint
                )
                if failed:
                    raise RuntimeError(f"{failed} batch request(s) failed in {name}")
                server_ms.setdefault(name, []).append((server_cpu_seconds(port) - server_cpu) * 1000 / sent)
                client_cpu.setdefault(name, []).append(cpu / elapsed)
                results[name].append(sent / elapsed)

            for round_no in range(args.rounds):
                print(f"round {round_no + 1}/{args.rounds} …", file=sys.stderr, flush=True)
                if not args.only_batches:
                    key = await setup_brand(database_url, with_challenges=False)
                    await analyze(dsn)
                    singles = make_events(args.singles, members=2000, seed=round_no)
                    server_cpu = server_cpu_seconds(port)
                    elapsed, cpu, failed = await post_raw(base, key, singles, concurrency=16)
                    server_ms["single"].append((server_cpu_seconds(port) - server_cpu) * 1000 / len(singles))
                    failures["single"] += failed
                    results["single"].append(len(singles) / elapsed)
                    client_cpu["single"].append(cpu / elapsed)
                    # the same requests again: every one a duplicate (one indexed look-up, no transaction)
                    elapsed, cpu, failed = await post_raw(base, key, singles, concurrency=16)
                    failures["duplicates"] += failed
                    results["duplicates"].append(len(singles) / elapsed)
                    client_cpu["duplicates"].append(cpu / elapsed)

                    if have_challenges:
                        key = await setup_brand(database_url, with_challenges=True, board=True)
                        await analyze(dsn)
                        singles = make_events(args.singles, members=2000, seed=50 + round_no)
                        elapsed, cpu, failed = await post_raw(base, key, singles, concurrency=16)
                        failures["single_50_challenges_board"] += failed
                        results["single_50_challenges_board"].append(len(singles) / elapsed)
                        client_cpu["single_50_challenges_board"].append(cpu / elapsed)

                    singles = make_events(args.singles, members=2000, seed=400 + round_no)
                    results["raw_per_event"].append(len(singles) / await raw_per_event(dsn, singles))
                if args.only_single:
                    continue

                await batches_on("batch", await setup_brand(database_url, with_challenges=False), 100 + round_no)
                if args.disjoint:
                    key = await setup_brand(database_url, with_challenges=False)
                    await batches_on("batch_disjoint", key, 100 + round_no, disjoint=True)
                if have_challenges:
                    key = await setup_brand(database_url, with_challenges=True)
                    await batches_on("batch_50_challenges", key, 200 + round_no)
                if args.program:
                    key = await setup_program_brand(database_url, namespace=namespace)
                    await batches_on("batch_program", key, 700 + round_no)

                events = make_events(args.batches * 1000, members=5000, seed=300 + round_no)
                results["raw_sql"].append(len(events) / await raw_sql(dsn, events))
                events = make_events(args.batches * 1000, members=5000, seed=600 + round_no)
                results["raw_unnest"].append(len(events) / await raw_unnest(dsn, events))

        # the server's Redis keys of this run
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for redis_key in client.scan_iter(match=f"{namespace}*", count=1000):
            client.delete(redis_key)
        client.close()

    raw = median(results["raw_unnest"]) if results["raw_unnest"] else float("nan")
    per_event = median(results["raw_per_event"]) if results["raw_per_event"] else float("nan")
    rows = []
    summary: dict[str, Any] = {}
    for name, label, limit in (
        ("single", "HTTP, 1 event/request, 16 clients, rules", per_event),
        ("single_50_challenges_board", "HTTP, 1 event/request, 50 challenges + board", per_event),
        ("duplicates", "HTTP, 1 duplicate/request, 16 clients", per_event),
        ("raw_per_event", "asyncpg, 1 transaction/event, 16 conns (limit)", per_event),
        ("batch", "HTTP, 1000-event batches, 2 clients", raw),
        ("batch_disjoint", "HTTP, batches, each client its own members", raw),
        ("batch_50_challenges", "HTTP, batches, 50 active challenges", raw),
        ("batch_program", "HTTP, batches, the demo's whole program", raw),
        ("raw_sql", "raw SQL executemany of the same rows", raw),
        ("raw_unnest", "raw SQL unnest insert of the same rows (limit)", raw),
    ):
        values = results[name]
        if not values:
            rows.append([label, "n/a", "n/a", "n/a", ""])
            continue
        med = median(values)
        summary[name] = {"median_events_per_s": med, "rounds": values, "ratio_to_limit": med / limit}
        if server_ms.get(name):
            summary[name]["server_cpu_ms_per_event"] = median(server_ms[name])
        shares = client_cpu.get(name)
        if shares:
            summary[name]["client_cpu_share"] = median(shares)
            summary[name]["failed_requests"] = failures.get(name, 0)
        rows.append([label, med, min(values), f"{med / limit:.2f}", f"{median(shares):.0%}" if shares else ""])
    if results["batch_50_challenges"]:
        summary["challenges_cost"] = 1 - median(results["batch_50_challenges"]) / median(results["batch"])
        paired = [1 - c / b for b, c in zip(results["batch"], results["batch_50_challenges"], strict=True)]
        summary["challenges_cost_per_round"] = paired
        summary["challenges_cost_paired_median"] = median(paired)
    print_table(
        f"Ingestion on PostgreSQL ({args.workers} server workers, {args.rounds} rounds; events/s)",
        ["scenario", "median", "min", "× limit", "client CPU"],
        rows,
    )
    for name in ("single", "batch", "batch_disjoint", "batch_50_challenges", "batch_program"):
        if summary.get(name, {}).get("server_cpu_ms_per_event") is not None:
            ms = summary[name]["server_cpu_ms_per_event"]
            print(f"  server CPU per event ({name}): {ms:.2f} ms (all server processes, median of the rounds)")
    if "challenges_cost" in summary:
        rounds = ", ".join(f"{c:.0%}" for c in summary["challenges_cost_per_round"])
        print(
            f"\n  50 challenges cost {summary['challenges_cost']:.0%} of the no-challenge batch throughput (goal ≤ 50%);"
            f" per round {rounds}, median {summary['challenges_cost_paired_median']:.0%}"
        )
    if "batch" in summary:
        met = summary["batch"]["median_events_per_s"] >= 5000
        print(f"  batch goal ≥ 5,000 events/s: {'met' if met else 'NOT met'}")
    print("  client CPU: the load generator's CPU time as a share of the elapsed time (raw asyncio HTTP/1.1 client)")
    path = write_json(
        "ingest",
        {
            "workers": args.workers,
            "rounds": args.rounds,
            "singles_per_round": args.singles,
            "results": summary,
            "at": datetime.now(UTC),
        },
    )
    print(f"  wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    asyncio.run(main())
