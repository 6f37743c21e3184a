"""A bounded soak: a steady mix of ingest, reads and redemptions against the real server for N minutes.

Run: ``.venv/bin/python bench/soak.py [--minutes 10] [--rate 80] [--window 30] [--workers 2]``. Prints one row
per window (requests, errors, p50/p99 latency per kind, server RSS) and a verdict, and writes
``bench/results/soak.json``. Needs the real PostgreSQL and Redis (see README). Exits 1 when any request
errs or the server's memory keeps growing.

The load is open-loop: requests start at a fixed ``rate`` per second whatever the answers take (a closed loop
would slow down with the server and hide latency). Of every 20 requests: 9 new single events (visits and
purchases of 1,000 members), 1 resend of an earlier event id (a duplicate), 5 board reads (top 10 and the
member's neighbourhood), 3 points reads of a member, 2 redemptions of a reward. Members are funded before
the clock starts, so redemptions only fail when the reward's stock is gone (a 409 counted as refused, not as
an error). An error is a transport failure or an answer that is neither 2xx nor an expected refusal.

Memory is the resident set of the server's processes (the supervisor and its workers, found through their
environment) sampled every window; the verdict compares the median of the last third of the windows with
the median of the windows after the first (the first holds the warm-up: caches, pools, imports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median, print_table, scratch_database, server, write_json
from bench.redemptions import create_brand

MEMBERS = 1_000
KINDS = ("ingest", "duplicate", "board", "points", "redeem")
MIX = ("ingest",) * 9 + ("duplicate",) + ("board",) * 5 + ("points",) * 3 + ("redeem",) * 2
RSS_GROWTH_LIMIT = 1.15  # flat: the late windows within 15% of the early ones
PROGRAM: dict[str, Any] = {
    "earning_rules": [
        {"key": "visit", "event_type": "visit", "points": 10},
        {"key": "spend", "event_type": "purchase", "per_unit": {"property": "amount", "points": 1}},
    ],
    "leaderboards": [{"key": "weekly", "title": "Weekly points", "metric": {"kind": "points"}, "period": "weekly"}],
}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def server_rss_mb(port: int) -> float:
    """Resident memory (MB) of every process started with ``QUESTLINE_PORT=<port>`` (the server and its workers)."""
    marker = f"QUESTLINE_PORT={port}".encode()
    total_kb = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if marker not in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


class Window:
    """What one window of the soak saw."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.refused = 0
        self.late = 0

    def row(self, index: int, seconds: float, rss: float) -> dict[str, Any]:
        every = [ms for values in self.latencies.values() for ms in values]
        return {
            "window": index,
            "ends_after_s": round(seconds),
            "requests": len(every) + len(self.errors),
            "errors": len(self.errors),
            "refused": self.refused,
            "p50_ms": round(percentile(every, 0.50), 2),
            "p99_ms": round(percentile(every, 0.99), 2),
            "p99_ms_by_kind": {k: round(percentile(v, 0.99), 2) for k, v in sorted(self.latencies.items())},
            "rss_mb": round(rss, 1),
            "late_starts": self.late,
            "error_samples": self.errors[:5],
        }


class Soak:
    """The load generator: one request every ``1 / rate`` seconds, each on its own task."""

    def __init__(self, client: httpx.AsyncClient, *, seed: int) -> None:
        self.client = client
        self.random = random.Random(seed)
        self.sent: list[str] = []
        self.count = 0

    def _request(self, kind: str) -> tuple[str, str, Any, tuple[int, ...]]:
        """``(method, path, body, refusals)`` for one request of ``kind``."""
        member = f"s{self.random.randrange(MEMBERS)}"
        if kind == "duplicate" and self.sent:
            event_id = self.random.choice(self.sent)
            return "POST", "/v1/events", self._event(event_id, member), ()
        if kind in ("ingest", "duplicate"):
            self.count += 1
            event_id = f"soak-{self.count}"
            self.sent.append(event_id)
            return "POST", "/v1/events", self._event(event_id, member), ()
        if kind == "board":
            return "GET", f"/v1/leaderboards/weekly?limit=10&around={member}&k=5", None, (404,)
        if kind == "points":
            return "GET", f"/v1/members/{member}/points", None, ()
        body = {"reward": "coffee", "idempotency_key": f"soak-r{self.count}-{self.random.random()}"}
        return "POST", f"/v1/members/{member}/redemptions", body, (409,)

    def _event(self, event_id: str, member: str) -> dict[str, Any]:
        n = int(event_id.rsplit("-", 1)[-1]) if event_id.rsplit("-", 1)[-1].isdigit() else 0
        if n % 3:
            return {"id": event_id, "member": member, "type": "visit", "occurred_at": datetime.now(UTC).isoformat()}
        return {
            "id": event_id,
            "member": member,
            "type": "purchase",
            "occurred_at": datetime.now(UTC).isoformat(),
            "properties": {"amount": 5 + n % 40},
        }

    async def one(self, kind: str, window: Window) -> None:
        method, path, body, refusals = self._request(kind)
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            window.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return
        ms = (time.perf_counter() - started) * 1000
        if response.status_code < 300:
            window.latencies[kind].append(ms)
        elif response.status_code in refusals:
            window.refused += 1
            window.latencies[kind].append(ms)
        else:
            window.errors.append(f"{kind} {method} {path}: {response.status_code} {response.text[:200]}")

    async def run(self, *, rate: float, minutes: float, window_s: float, port: int) -> list[dict[str, Any]]:
        """Start requests at ``rate`` for ``minutes``; a window's row is printed as soon as its requests ended.

        Each request counts in the window in which it started, so a slow answer raises that window's p99
        (it is not moved to a later one), and the generator never waits for answers.
        """
        interval = 1.0 / rate
        started = time.perf_counter()
        ends = started + minutes * 60
        windows: list[Window] = []
        in_window: list[set[asyncio.Task[None]]] = []
        rows: list[dict[str, Any]] = []
        tick = started

        async def report(index: int, rss: float, seconds: float) -> None:
            await asyncio.gather(*in_window[index])
            rows.append(windows[index].row(index + 1, seconds, rss))
            print(_progress(rows[-1]), flush=True)

        reports: list[asyncio.Task[None]] = []
        while True:
            now = time.perf_counter()
            index = int((now - started) // window_s)
            while len(windows) <= index and now < ends:
                if windows:  # the previous window closed: sample memory now, report once its requests end
                    closed = len(windows) - 1
                    reports.append(asyncio.create_task(report(closed, server_rss_mb(port), (closed + 1) * window_s)))
                windows.append(Window())
                in_window.append(set())
            if now >= ends:
                closed = len(windows) - 1
                reports.append(asyncio.create_task(report(closed, server_rss_mb(port), now - started)))
                await asyncio.gather(*reports)
                rows.sort(key=lambda r: r["window"])
                return rows
            tick += interval
            delay = tick - time.perf_counter()
            if delay < -interval:
                windows[-1].late += 1  # the generator fell behind (the machine, not the server, is the limit)
            await asyncio.sleep(max(0.0, delay))  # always yield: the requests and reports run meanwhile
            task = asyncio.create_task(self.one(MIX[self.random.randrange(len(MIX))], windows[-1]))
            in_window[-1].add(task)


def _progress(row: dict[str, Any]) -> str:
    return (
        f"window {row['window']:>3} ({row['ends_after_s']:>4} s): {row['requests']:>5} requests, "
        f"{row['errors']} errors, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, RSS {row['rss_mb']:.0f} MB"
    )


def _ok(response: httpx.Response) -> None:
    if response.status_code >= 300:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )


async def prepare(client: httpx.AsyncClient) -> None:
    """Program, reward and funded members (untimed)."""
    _ok(await client.put("/v1/program", json=PROGRAM))
    reward = {
        "name": {"en": "Coffee"},
        "cost": 50,
        "type": "voucher",
        "codes": {"source": "pattern", "pattern": "SK-XXXX-####"},
    }
    _ok(await client.put("/v1/rewards/coffee", json=reward))
    semaphore = asyncio.Semaphore(20)

    async def enrol(n: int) -> None:
        async with semaphore:
            (
                await client.post("/v1/members", json={"external_id": f"s{n}", "display_name": f"Soak {n}"})
            ).raise_for_status()
            adjustment = {"points": 5_000, "reason": "soak funding"}
            _ok(await client.post(f"/v1/members/s{n}/points/adjustments", json=adjustment))

    await asyncio.gather(*(enrol(n) for n in range(MEMBERS)))


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Errors, RSS growth (late windows vs early ones) and p99 drift, with pass/fail."""
    settled = rows[1:] or rows
    third = max(1, len(settled) // 3)
    early_rss = median([r["rss_mb"] for r in settled[:third]])
    late_rss = median([r["rss_mb"] for r in settled[-third:]])
    early_p99 = median([r["p99_ms"] for r in settled[:third]])
    late_p99 = median([r["p99_ms"] for r in settled[-third:]])
    errors = sum(r["errors"] for r in rows)
    growth = late_rss / early_rss if early_rss else 0.0
    return {
        "requests": sum(r["requests"] for r in rows),
        "errors": errors,
        "refused": sum(r["refused"] for r in rows),
        "rss_early_mb": early_rss,
        "rss_late_mb": late_rss,
        "rss_growth": round(growth, 3),
        "rss_flat": growth <= RSS_GROWTH_LIMIT,
        "p99_early_ms": early_p99,
        "p99_late_ms": late_p99,
        "p99_drift": round(late_p99 / early_p99, 2) if early_p99 else 0.0,
        "late_starts": sum(r["late_starts"] for r in rows),
        "passed": errors == 0 and growth <= RSS_GROWTH_LIMIT,
    }


async def main() -> int:
    """Prepare, soak, print, write; the exit status says whether it passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=80.0, help="requests started per second")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per reported window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("QUESTLINE_RATE_LIMIT", "0")  # the soak measures the server, not the per-key limit
    async with scratch_database("ql_bench_soak") as (url, _dsn):
        _brand_id, key = await create_brand(url)
        with server(url, namespace=f"soak{uuid.uuid4().hex[:6]}", workers=args.workers) as base:
            port = int(base.rsplit(":", 1)[1])
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as client:
                print(f"preparing {MEMBERS} funded members …", flush=True)
                await prepare(client)
                print(
                    f"soaking for {args.minutes:g} min at {args.rate:g} requests/s, a row every {args.window:g} s",
                    flush=True,
                )
                rows = await Soak(client, seed=args.seed).run(
                    rate=args.rate, minutes=args.minutes, window_s=args.window, port=port
                )
    result = verdict(rows)
    print_table(
        f"Soak: {args.minutes:g} min at {args.rate:g} requests/s, {args.workers} workers (PostgreSQL, real Redis)",
        ["window", "after s", "requests", "errors", "refused", "p50 ms", "p99 ms", "RSS MB"],
        [
            [
                r["window"],
                r["ends_after_s"],
                r["requests"],
                r["errors"],
                r["refused"],
                r["p50_ms"],
                r["p99_ms"],
                r["rss_mb"],
            ]
            for r in rows
        ],
    )
    print(
        f"\nerrors {result['errors']} of {result['requests']}; RSS {result['rss_early_mb']:.0f} → "
        f"{result['rss_late_mb']:.0f} MB (×{result['rss_growth']}, flat if ≤ ×{RSS_GROWTH_LIMIT}); p99 "
        f"{result['p99_early_ms']:.1f} → {result['p99_late_ms']:.1f} ms; generator late {result['late_starts']} times; "
        f"{'PASSED' if result['passed'] else 'FAILED'}"
    )
    path = write_json(
        "soak",
        {
            "minutes": args.minutes,
            "rate": args.rate,
            "window_s": args.window,
            "workers": args.workers,
            "mix": {kind: MIX.count(kind) / len(MIX) for kind in KINDS},
            "windows": rows,
            "verdict": result,
            "at": datetime.now(UTC).isoformat(),
        },
    )
    print(f"wrote {path}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
