"""Boards that missed writes while Redis was down, and the background task that catches them up.

When a post-commit Redis write fails (or is skipped because the Redis circuit breaker is open) the
brand is marked *stale since* that moment, in this process. Reads of a stale brand are answered from
the SQL totals (``"source": "sql"``), which are always complete. A background task waits for Redis to
answer again (its ping is the breaker's half-open probe) and then rebuilds each stale brand from SQL
with :func:`leaderboards.rebuild.rebuild_brand`, whose rebuild log keeps the writes landing meanwhile;
then it checks every brand's sentinel, in case Redis restarted empty. No manual rebuild is needed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from engine.aio import wait_event
from engine.errors import Conflict
from leaderboards import rebuild

if TYPE_CHECKING:
    from datetime import datetime

    from engine.breaker import CircuitBreaker
    from engine.clock import Clock
    from engine.db import Database
    from engine.ids import BrandId
    from leaderboards.store import BoardStore

log = logging.getLogger(__name__)


class CatchUp:
    """The brands whose Redis boards are stale, and the loop that rebuilds them once Redis answers."""

    def __init__(
        self, db: Database, store: BoardStore, *, breaker: CircuitBreaker, clock: Clock, interval: float = 1.0
    ) -> None:
        self.db = db
        self.store = store
        self.breaker = breaker
        self.clock = clock
        self.interval = interval
        self._stale: dict[BrandId, datetime] = {}
        self._marks: dict[BrandId, int] = {}
        """Writes that missed Redis, per stale brand: one landing during a catch-up makes it run again."""
        self._wake = asyncio.Event()
        self._sweep = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.caught_up_total = 0
        """Brands rebuilt after an outage (for metrics and tests)."""
        breaker.on_close(self._closed)

    def _closed(self) -> None:
        self._sweep = True  # Redis may have restarted empty: check every brand's sentinel too
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._wake.set)

    def mark(self, brand_id: BrandId, error: BaseException | None = None) -> None:
        """Record that a write of ``brand_id`` did not reach Redis (its boards are stale until caught up)."""
        self._marks[brand_id] = self._marks.get(brand_id, 0) + 1
        if brand_id not in self._stale:
            self._stale[brand_id] = self.clock.now()
            log.warning(
                "leaderboards of brand %s are stale (Redis: %s); reads use SQL until caught up", brand_id, error
            )

    def stale_since(self, brand_id: BrandId) -> datetime | None:
        """When the brand's boards went stale, or ``None`` when Redis holds them in full."""
        return self._stale.get(brand_id)

    @property
    def stale(self) -> dict[BrandId, datetime]:
        """Every stale brand and since when."""
        return dict(self._stale)

    async def run(self) -> None:
        """Forever: once Redis answers again, catch up the stale brands."""
        self._loop = asyncio.get_running_loop()
        while True:
            await wait_event(self._wake, self.interval)
            self._wake.clear()
            if not self._stale and not self._sweep:
                continue
            try:
                await self.run_once()
            except Exception:
                log.exception("catching the leaderboards up failed; retrying in %ss", self.interval)

    async def run_once(self) -> list[BrandId]:
        """Probe Redis and, if it answers, rebuild every stale brand; returns the brands caught up."""
        if self.breaker.is_open:
            return []
        try:
            await self.store.redis.ping()  # while the breaker is half-open, this is its probe
        except RedisError:
            return []
        done: list[BrandId] = []
        for brand_id, since in sorted(self._stale.items()):
            # The brand stays stale (reads use SQL) until its rebuild is complete.
            marks = self._marks.get(brand_id, 0)
            try:
                await rebuild.rebuild_brand(self.db, self.store, brand_id=brand_id, now=self.clock.now())
            except Conflict:
                continue  # another worker rebuilds it, maybe from SQL read before this worker's writes: again later
            if self._marks.get(brand_id, 0) != marks:
                continue  # a write missed Redis while the rebuild ran: once more
            del self._stale[brand_id]
            del self._marks[brand_id]
            done.append(brand_id)
            self.caught_up_total += 1
            log.info("leaderboards of brand %s caught up (stale since %s)", brand_id, since.isoformat())
        if self._sweep:
            self._sweep = False
            done.extend(await rebuild.ensure_ready(self.db, self.store, now=self.clock.now()))
        return done
