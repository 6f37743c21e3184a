"""The periodic jobs' scheduler: rounds repeat after failures, never overlap, and stop when told."""

from __future__ import annotations

import asyncio
import time

from engine.metrics import JOB_RUNS
from web.jobs import Jobs


def _count(job: str, outcome: str) -> float:
    return JOB_RUNS.labels(job, outcome)._value.get()


async def test_a_failed_round_is_counted_and_the_next_one_runs() -> None:
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    errors, oks = _count("t-flaky", "error"), _count("t-flaky", "ok")
    jobs = Jobs()
    jobs.every("t-flaky", 0.02, flaky)
    jobs.start()
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        await jobs.stop()
    assert len(calls) >= 3
    assert _count("t-flaky", "error") == errors + 1
    assert _count("t-flaky", "ok") >= oks + 2


async def test_rounds_never_overlap() -> None:
    running = 0
    most = 0
    rounds = 0

    async def slow() -> None:
        nonlocal running, most, rounds
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.08)  # four intervals long
        running -= 1
        rounds += 1

    jobs = Jobs()
    jobs.every("t-slow", 0.02, slow)
    jobs.start()
    try:
        await asyncio.sleep(0.5)
    finally:
        await jobs.stop()
    assert rounds >= 2
    assert most == 1


async def test_stop_cancels_a_running_round_and_waits_for_it() -> None:
    started = asyncio.Event()
    unwound: list[bool] = []

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.append(True)

    jobs = Jobs()
    jobs.every("t-stuck", 0.01, stuck)
    jobs.start()
    await asyncio.wait_for(started.wait(), 5)
    began = time.perf_counter()
    await jobs.stop()
    assert unwound == [True]
    assert time.perf_counter() - began < 1.0
