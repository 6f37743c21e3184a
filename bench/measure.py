"""Measuring a benchmark round: run a worker for a while, count what it did, and the CPU each process used."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import median

CONCURRENCY = 50
"""Tasks each measured worker runs in (the same concurrency as the raw limits)."""


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


class Round(NamedTuple):
    """One measured round: operations per second and the CPU (in cores) each party used meanwhile."""

    rate: float
    cores: dict[str, float]


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found.extend(children)
        frontier = children
    return found


def _machine_ticks() -> int:
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return user + nice + system + irq + softirq + steal


def _cpu_snapshot(redis_pid: int) -> dict[str, int]:
    ticks = {"bench": _ticks(os.getpid()), "machine": _machine_ticks()}
    ticks["server"] = 0
    for pid in _descendants(os.getpid()):
        try:
            ticks["server"] += _ticks(pid)
        except OSError:
            continue
    try:
        ticks["redis"] = _ticks(redis_pid)
    except OSError:
        ticks["redis"] = 0  # Redis runs elsewhere
    return ticks


async def measured(seconds: float, worker, redis_pid: int) -> Round:  # type: ignore[no-untyped-def]
    """Run a round and account the CPU of this process, the server's processes, Redis and the rest."""
    before, started = _cpu_snapshot(redis_pid), time.perf_counter()
    rate = await run_for(seconds, worker)
    after, elapsed = _cpu_snapshot(redis_pid), time.perf_counter() - started
    hz = os.sysconf("SC_CLK_TCK")
    cores = {name: (after[name] - before[name]) / hz / elapsed for name in before}
    cores["others"] = cores.pop("machine") - cores["bench"] - cores["server"] - cores["redis"]
    return Round(rate=rate, cores=cores)


def cpu_per_read(rounds: list[Round]) -> dict[str, float]:
    """Median CPU microseconds per operation of each party (``others``: the machine's other processes, in cores)."""
    out = {
        name: round(median([r.cores[name] / r.rate * 1e6 for r in rounds]), 1) for name in ("bench", "server", "redis")
    }
    out["others_cores"] = round(median([r.cores["others"] for r in rounds]), 2)
    return out


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
        self.reader = self.writer = None
