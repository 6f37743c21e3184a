"""The notifications worker: derive the feed from the outbox and rank changes, announce it live, send emails.

Woken after every pipeline commit (the notifications step), at most once every :data:`MIN_GAP` seconds, and
every :data:`INTERVAL` seconds otherwise (points notices, redemptions, tier reviews and manual grants write
outbox rows outside the pipeline).
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.aio import wait_event
from engine.clock import Clock
from engine.db import Database
from engine.keys import member_channel
from engine.mail import EmailSender
from engine.metrics import job_run
from engine.redisconn import queue_messages
from engine.tenants import Brand
from leaderboards.service import Leaderboards
from notifications import feed, mailing
from notifications.processor import RankWatcher
from web.notify_mail import TemplateRenderer

log = logging.getLogger(__name__)

INTERVAL = 5.0
MIN_GAP = 0.5
"""Seconds between two passes at least: under load one pass takes every commit of that time, not one each."""
LIVE_MESSAGE = b'{"notification":true}'


class BoardNeighbours:
    """Who stands right below a rank on a board period (``notifications.processor.Neighbours``)."""

    def __init__(self, leaderboards: Leaderboards) -> None:
        self.leaderboards = leaderboards

    async def below(
        self, brand: Brand, *, board: str, period: str, scope: str, rank: int, count: int
    ) -> list[tuple[str, int, float]]:
        """The ``count`` members listed after ``rank`` (external ids), read like the board's API read."""
        page = await self.leaderboards.read(
            brand, board, period=period, scope=scope or None, offset=rank, limit=max(1, count)
        )
        return [(entry.member, entry.rank, entry.score) for entry in page.entries if entry.member]


class NotificationsWorker:
    """Feed derivation and email dispatch (one pass with :meth:`run_once`, forever with :meth:`run`)."""

    def __init__(
        self,
        *,
        db: Database,
        redis: Redis,
        namespace: str,
        clock: Clock,
        mailer: EmailSender,
        renderer: TemplateRenderer,
        watcher: RankWatcher | None = None,
    ) -> None:
        self.db = db
        self.redis = redis
        self.namespace = namespace
        self.clock = clock
        self.mailer = mailer
        self.renderer = renderer
        self.watcher = watcher
        self._wake = asyncio.Event()
        self._recorded: set[int] = set()
        """Outbox ids of the feed's look-back window this worker already turned into rows."""

    def wake(self) -> None:
        """Run a pass soon (called after a pipeline commit)."""
        self._wake.set()

    async def derive(self) -> set[tuple[int, int]]:
        """Turn new outbox messages into feed rows and tell the members' open portal pages."""
        touched = await feed.derive(self.db, now=self.clock.now(), recorded=self._recorded)
        if self.watcher is not None:
            try:
                touched |= await self.watcher.flush(self.db)
            except RedisError:  # derived and best effort: the boards' reads fall back to SQL, the memo does not
                log.warning("overtaken notifications skipped: Redis unavailable", exc_info=True)
        if touched:
            try:
                messages = [(member_channel(self.namespace, b, m), LIVE_MESSAGE) for b, m in sorted(touched)]
                async with self.redis.pipeline(transaction=False) as pipe:
                    queue_messages(pipe, self.redis, messages)  # SPUBLISH on a cluster, one script for many else
                    await pipe.execute()
            except RedisError:
                log.warning("announcing %d notification(s) live failed", len(touched), exc_info=True)
        return touched

    async def dispatch(self) -> mailing.DispatchReport:
        """Send the emails that are due."""
        return await mailing.dispatch(self.db, sender=self.mailer, renderer=self.renderer, now=self.clock.now())

    async def run_once(self) -> mailing.DispatchReport:
        """One pass: derive, then dispatch (counted as a round of the ``notifications`` job)."""
        async with job_run("notifications"):
            await self.derive()
            return await self.dispatch()

    async def run(self, *, interval: float = INTERVAL, min_gap: float = MIN_GAP) -> None:
        """Pass after pass, woken early by :meth:`wake` but at most one pass every ``min_gap`` seconds.

        A pass reads the outbox from its cursor (with a look-back) whatever woke it, so waking it for each
        commit would cost that read per event; the gap makes it one read per batch of commits.
        """
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # state is in SQL: the next pass retries
                log.exception("notifications pass failed")
            await asyncio.sleep(min_gap)
            await wait_event(self._wake, max(0.0, interval - min_gap))
