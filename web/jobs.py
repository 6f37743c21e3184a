"""The periodic background jobs of one worker process, on APScheduler's asyncio scheduler.

Why APScheduler (3.x, ``AsyncIOScheduler``) and not a Redis job queue (arq, SAQ): every periodic job here
is idempotent and claims its work in SQL (a period is closed once, a lot is released or expired once, a tier
review acts only on members still due), so each worker may run them and no queue or leader is needed; and a
queue on Redis would stop expiry and tier reviews during a Redis outage, which must not stop SQL-only work.
The scheduler gives what hand-written ``while True: sleep`` loops got subtly wrong: interval triggers with
jitter (workers do not wake in step), no overlapping rounds (``max_instances=1``), missed rounds coalesced
into one, and shutdown that cancels running rounds and waits for them, boundedly.

Two loops stay hand-written because they are not periodic but woken: webhook delivery (``engine.outbox``,
woken by each commit that queues a message) and the leaderboards' catch-up (woken when the Redis circuit
closes). Both wait with :func:`engine.aio.wait_event`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from engine.metrics import job_run

log = logging.getLogger("questline.jobs")

#: How long shutdown waits for a cancelled round to unwind.
STOP_TIMEOUT_S = 10.0


class Jobs:
    """Named periodic rounds; each is timed and counted (``questline_job_*`` metrics) and logged when it fails."""

    def __init__(self) -> None:
        self.scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )
        self._running: set[asyncio.Task[object]] = set()
        self.names: list[str] = []

    def every(self, name: str, seconds: float, round_: Callable[[], Awaitable[object]]) -> None:
        """Run ``round_`` every ``seconds`` (the first time ``seconds`` after start); a failure waits for the next."""

        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                async with job_run(name):
                    await round_()
            except Exception:  # the next round retries: every job is idempotent
                log.exception("background job %s failed; retrying in %ss", name, seconds)
            finally:
                if task is not None:
                    self._running.discard(task)

        jitter = max(0, min(int(seconds / 10), 30))  # seconds; 0 for the short intervals tests use
        self.scheduler.add_job(
            run, IntervalTrigger(seconds=seconds, jitter=jitter or None), id=name, name=name, replace_existing=True
        )
        self.names.append(name)

    def start(self) -> None:
        """Start the schedule (inside the running event loop)."""
        self.scheduler.start()

    async def stop(self) -> None:
        """Stop scheduling, cancel the rounds still running and wait for them (at most :data:`STOP_TIMEOUT_S`)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # cancels the running rounds' tasks
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            _done, stuck = await asyncio.wait(running, timeout=STOP_TIMEOUT_S)
            for task in stuck:
                log.error("background job %s did not stop within %ss", task.get_name(), STOP_TIMEOUT_S)
