"""Shared benchmark plumbing: a throw-away PostgreSQL database, a real server in a subprocess, tables."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_ADMIN = os.environ.get("QUESTLINE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("QUESTLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BENCH_SECRET = "bench-" + "5f0c2b7e9a41d3c8" * 4  # a throw-away server's secret (>= 32 bytes)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def scratch_database(prefix: str = "ql_bench"):  # type: ignore[no-untyped-def]
    """Create a migrated PostgreSQL database for one run; drop it afterwards."""
    from engine.schema import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN.rsplit("/", 1)[0]
    url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    await upgrade(url)
    try:
        yield url, f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.contextmanager
def server(database_url: str, *, namespace: str, workers: int = 2) -> Iterator[str]:
    """Run ``questline serve`` (uvicorn) on PostgreSQL and the real Redis; yield its base URL."""
    port = free_port()
    env = {
        **server_environment(os.environ),
        "QUESTLINE_DATABASE_URL": database_url,
        "QUESTLINE_REDIS_URL": REDIS_URL,
        "QUESTLINE_REDIS_NAMESPACE": namespace,
        "QUESTLINE_AUTO_MIGRATE": "false",
        "QUESTLINE_LOG_LEVEL": "warning",
        "QUESTLINE_WORKERS": str(workers),
        "QUESTLINE_PORT": str(port),
        "QUESTLINE_KEY_CACHE_SECONDS": "60",
        # The per-key limit still runs (its Redis call is part of every request's cost) but never refuses:
        # the benches send far more than the default 100 requests/s of one key.
        "QUESTLINE_RATE_LIMIT": os.environ.get("QUESTLINE_RATE_LIMIT", "1000000"),
        "QUESTLINE_RATE_LIMIT_BURST": os.environ.get("QUESTLINE_RATE_LIMIT_BURST", "1000000"),
        # outside the embedded default the server refuses a short or default secret
        "QUESTLINE_SECRET": os.environ.get("QUESTLINE_SECRET") or BENCH_SECRET,
    }
    # The server's log goes to a file, never to a pipe: a pipe nobody reads fills up (64 KB) and then blocks
    # every worker on its next log line, which froze whole bench runs.
    log_file = tempfile.NamedTemporaryFile(prefix="questline-bench-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log_file
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine starts workers slowly
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.terminate()
                process.wait(timeout=30)
                raise RuntimeError(f"server did not start: {_tail(log_file.name)}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log_file.close()
        errors = [line for line in _tail(log_file.name, 200_000).splitlines() if "Traceback" in line or "error" in line]
        if errors:
            print(f"  the server logged {len(errors)} error line(s): see {log_file.name}", file=sys.stderr)
        else:
            os.unlink(log_file.name)


def _tail(path: str, size: int = 8_000) -> str:
    """The end of a file (the server's log)."""
    with open(path, "rb") as file:
        file.seek(max(0, os.path.getsize(path) - size))
        return file.read().decode(errors="replace")


def server_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The environment for the server: the bench's own ``QUESTLINE_BENCH_*`` variables are not settings.

    The server refuses unknown ``QUESTLINE_*`` variables, so passing the bench's overrides through would
    stop it from starting.
    """
    return {name: value for name, value in environ.items() if not name.startswith("QUESTLINE_BENCH_")}


async def raw_brand(
    conn: asyncpg.Connection, *, name: str = "raw", members: Sequence[str] = ()
) -> tuple[int, dict[str, int]]:
    """A brand inserted with raw SQL and its ``members`` (one ``unnest`` insert): its id and their ids by name."""
    brand_id = int(
        await conn.fetchval(
            "INSERT INTO brands (slug, name, timezone, config_version, settings, created_at)"
            " VALUES ($1, $2, 'Europe/Rome', 1, '{}', now()) RETURNING id",
            f"{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}", name,
        )
    )  # fmt: skip
    if not members:
        return brand_id, {}
    rows = await conn.fetch(
        "INSERT INTO members (brand_id, external_id, display_name, locale, attributes, created_at, updated_at)"
        " SELECT $1, n, '', '', '{}', now(), now() FROM unnest($2::text[]) n RETURNING external_id, id",
        brand_id, list(members),
    )  # fmt: skip
    return brand_id, {row["external_id"]: row["id"] for row in rows}


def median(values: list[float]) -> float:
    """The median (machines are noisy)."""
    return statistics.median(values)


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print an aligned text table."""
    cells = [
        header,
        *[
            [
                f"{c:,.0f}" if isinstance(c, float) and c >= 100 else (f"{c:.2f}" if isinstance(c, float) else str(c))
                for c in row
            ]
            for row in rows
        ],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for index, row in enumerate(cells):
        print(
            "  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write results to ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def server_processes(port: int) -> list[int]:
    """The pids started with ``QUESTLINE_PORT=<port>``: the server of :func:`server` and its workers."""
    marker = f"QUESTLINE_PORT={port}".encode()
    found: list[int] = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.append(int(pid))
    return found


def server_cpu_seconds(port: int) -> float:
    """CPU time (user + system) the server's processes have used so far."""
    ticks = 0
    for pid in server_processes(port):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
