"""The boards as reads and the pipeline see them: per-brand definitions, cached, and each board's current period.

Two caches, one per kind of caller. The pipeline's unit of work already holds the brand's configuration
version (:meth:`engine.pipeline.UnitOfWork.config_version`), so it asks :meth:`BoardDefinitions.at` with it
(:class:`engine.cache.BrandCache`). A read holds no version: it trusts what it loaded for a couple of
seconds (other processes' changes are noticed within that TTL), and one query per process reloads it
however many reads arrive meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from engine.cache import BrandCache
from engine.errors import NotFound
from engine.tenants import config_version
from leaderboards import ranking, repository
from leaderboards.models import BoardDef, BoardSummary, PeriodRef

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId
    from engine.tenants import Brand

#: Current periods remembered before the cache starts over.
MAX_PERIODS = 10_000


class BoardDefinitions:
    """Per-process cache of the brands' boards (by config version, and by TTL for reads)."""

    def __init__(self, db: Database, *, ttl: float = 2.0) -> None:
        self.db = db
        self._ttl = ttl
        self._by_version: BrandCache[tuple[BoardDef, ...]] = BrandCache()
        self._read_boards: dict[BrandId, _Definitions] = {}
        self._loading: dict[BrandId, asyncio.Future[_Definitions]] = {}
        self._generations: dict[BrandId, int] = {}
        self._periods: dict[tuple[Any, ...], PeriodRef] = {}

    async def at(self, session: AsyncSession, brand_id: BrandId, version: int) -> tuple[BoardDef, ...]:
        """The brand's boards at config ``version`` (read once per unit of work by the caller)."""
        return await self._by_version.get(brand_id, version, lambda: repository.load_boards(session, brand_id=brand_id))

    async def boards(self, brand: Brand) -> tuple[BoardDef, ...]:
        """The brand's boards for reads (re-checked against the config version every few seconds)."""
        return (await self._definitions(brand)).boards

    async def board(self, brand: Brand, key: str, *, public: bool) -> tuple[BoardDef, BoardSummary]:
        """One board and its summary; a publishable key only sees public ones.

        Raises:
            NotFound: no such board (or not public, for a publishable key).
        """
        found = (await self._definitions(brand)).by_key.get(key)
        if found is None or (public and found[0].visibility != "public"):
            raise NotFound(f"no leaderboard {key!r}", field="key")
        return found

    def forget(self, brand_id: BrandId) -> None:
        """Drop the cached definitions after a change here (other processes notice within the TTL)."""
        self._by_version.invalidate(brand_id)
        self._read_boards.pop(brand_id, None)
        self._loading.pop(brand_id, None)
        self._generations[brand_id] = self._generations.get(brand_id, 0) + 1

    def current(self, brand: Brand, board: BoardDef, now: datetime) -> PeriodRef:
        """The board's current period, computed once per period (not on every read)."""
        cache_key = (brand.id, brand.tz, board.id, board.period, board.starts_at, board.ends_at)
        ref = self._periods.get(cache_key)
        if (
            ref is not None
            and (ref.starts_at is None or ref.starts_at <= now)
            and (ref.ends_at is None or now < ref.ends_at)
        ):
            return ref
        ref = ranking.current_period(board, now, brand.tz)
        if len(self._periods) > MAX_PERIODS:
            self._periods.clear()
        self._periods[cache_key] = ref
        return ref

    async def _definitions(self, brand: Brand) -> _Definitions:
        hit = self._read_boards.get(brand.id)
        if hit is not None and hit.expires > time.monotonic():
            return hit
        loading = self._loading.get(brand.id)
        if loading is None:
            # One query per process when the cache expires, however many reads arrive meanwhile: they
            # all wait for it (a cancelled read does not cancel it for the others).
            loading = asyncio.ensure_future(self._load(brand.id))
            self._loading[brand.id] = loading
        return await asyncio.shield(loading)

    async def _load(self, brand_id: BrandId) -> _Definitions:
        generation = self._generations.get(brand_id, 0)
        try:
            async with self.db.read() as session:
                boards = await self.at(session, brand_id, await config_version(session, brand_id))
        finally:
            if self._loading.get(brand_id) is asyncio.current_task():
                del self._loading[brand_id]
        previous = self._read_boards.get(brand_id)
        by_key = (
            previous.by_key
            if previous is not None and previous.boards is boards
            else {b.key: (b, summary(b)) for b in boards}
        )
        found = _Definitions(time.monotonic() + self._ttl, boards, by_key)
        if generation == self._generations.get(brand_id, 0):  # not invalidated while it loaded
            self._read_boards[brand_id] = found
        return found


class _Definitions:
    """A brand's boards as reads see them, with their summaries by key, until ``expires`` (monotonic)."""

    __slots__ = ("boards", "by_key", "expires")

    def __init__(
        self, expires: float, boards: tuple[BoardDef, ...], by_key: dict[str, tuple[BoardDef, BoardSummary]]
    ) -> None:
        self.expires = expires
        self.boards = boards
        self.by_key = by_key


def summary(board: BoardDef) -> BoardSummary:
    """A board as widgets see it."""
    return BoardSummary(
        key=board.key,
        title=board.title,
        period=board.period,
        order=board.order,
        ties=board.ties,
        scope=board.scope,
        visibility=board.visibility,
        description=board.description,
    )
