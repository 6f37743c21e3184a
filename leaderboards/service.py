"""The leaderboards at run time: one object per app process that the web layer and commands call.

:class:`Leaderboards` owns the :class:`BoardStore`, the definitions (:mod:`leaderboards.definitions`), the
background tasks that repair a flushed Redis, and the loop that closes ended periods; reads, privacy and
rebuilds are done by their own modules (:mod:`leaderboards.reads`, :mod:`leaderboards.privacy`,
:mod:`leaderboards.rebuild`, :mod:`leaderboards.closing`).

A read of a live period costs one Redis round trip and no SQL: the board's directory in Redis (written
with the totals, rebuilt with them) turns external ids into members and members into labels. SQL is
read only for a closed period (the archive), while Redis is being rebuilt, and to tell an unknown
``around`` member (404) from one without a total on the board.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from engine.aio import cancel_and_wait
from engine.breaker import CircuitBreaker
from engine.errors import Conflict, ValidationError
from engine.ids import BrandId, MemberId
from engine.redisconn import breaker_of
from leaderboards import closing, keys, privacy, ranking, reads, rebuild, repository
from leaderboards.catchup import CatchUp
from leaderboards.definitions import BoardDefinitions, summary
from leaderboards.processor import LeaderboardsProcessor
from leaderboards.slots import Slot
from leaderboards.store import BoardStore

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.buckets import Charge
    from engine.clock import Clock
    from engine.db import Database
    from engine.grants import BadgeGranter
    from engine.tenants import Brand
    from leaderboards.models import BoardDef, BoardPage, BoardSpec, BoardSummary, Preference

log = logging.getLogger(__name__)
MAX_LIMIT = 100
MAX_AROUND = 25
MAX_FRIENDS = 100


class Leaderboards:
    """Everything the leaderboards need at run time, built once per process.

    ``grant_badge`` pays the badge rewards of closing periods (the badges package's granter, passed by
    the composition root); without it a badge reward is logged and skipped. ``breaker`` is the Redis
    client's circuit breaker (found on a client made by :func:`engine.redisconn.create_redis_client`);
    while it is open no write waits on Redis, the brand is marked stale and reads answer from SQL.
    """

    def __init__(
        self,
        db: Database,
        redis: Redis,
        *,
        namespace: str,
        clock: Clock,
        grant_badge: BadgeGranter | None = None,
        close_interval: float | None = 60.0,
        definitions_ttl: float = 2.0,
        breaker: CircuitBreaker | None = None,
        catch_up_interval: float = 1.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.namespace = namespace
        self.store = BoardStore(redis, namespace=namespace)
        self.definitions = BoardDefinitions(db, ttl=definitions_ttl)
        self.grant_badge = grant_badge
        self.close_interval = close_interval
        self.breaker = breaker or breaker_of(redis) or CircuitBreaker(name="redis")
        self.catch_up = CatchUp(db, self.store, breaker=self.breaker, clock=clock, interval=catch_up_interval)
        self._tasks: dict[BrandId, asyncio.Task[None]] = {}
        self._catching_up: asyncio.Task[None] | None = None

    def processor(self) -> LeaderboardsProcessor:
        """The pipeline step."""
        return LeaderboardsProcessor(self)

    # --- life cycle ----------------------------------------------------------------------------------

    async def start(self, *, rebuild_now: bool) -> None:
        """Rebuild brands whose sentinel is missing (now, or in the background), and start the catch-up.

        The period closer is :meth:`maintenance_round`, which the composition root schedules every
        ``close_interval`` seconds (``web.jobs``).
        """
        if rebuild_now:
            await rebuild.ensure_ready(self.db, self.store, now=self.clock.now())
        else:
            self._spawn_ensure_ready()
        if self._catching_up is None:
            self._catching_up = asyncio.create_task(self.catch_up.run(), name="leaderboards-catch-up")

    async def stop(self) -> None:
        """Cancel the background work (the catch-up and running rebuilds)."""
        tasks = [t for t in [self._catching_up, *self._tasks.values()] if t is not None]
        await cancel_and_wait(tasks)  # bounded: shutdown never hangs on a rebuild slow to unwind
        self._catching_up = None
        self._tasks.clear()

    async def settled(self) -> None:
        """Wait for the rebuilds running in the background (the check at start, scheduled ones) to end."""
        while running := [t for t in self._tasks.values() if not t.done()]:
            await asyncio.wait(running)

    async def maintenance_round(self) -> None:
        """Close the periods that ended and rebuild brands whose boards are missing from Redis.

        Idempotent (closing is claimed in SQL), so every worker may run it; a failure is retried next round.
        """
        await self.close_periods()
        await rebuild.ensure_ready(self.db, self.store, now=self.clock.now())

    def _spawn_ensure_ready(self) -> None:
        async def run() -> None:
            try:
                await rebuild.ensure_ready(self.db, self.store, now=self.clock.now())
            except Exception:
                log.exception("leaderboard rebuild at start failed; it is retried on the next check")

        task = asyncio.create_task(run(), name="leaderboards-ensure-ready")
        self._tasks[BrandId(0)] = task
        task.add_done_callback(lambda _t: self._tasks.pop(BrandId(0), None))

    def schedule_rebuild(self, brand_id: BrandId) -> asyncio.Task[None]:
        """Rebuild a brand's boards in the background (once at a time); reads answer from SQL meanwhile."""
        running = self._tasks.get(brand_id)
        if running is not None and not running.done():
            return running

        async def run() -> None:
            try:
                await rebuild.rebuild_brand(self.db, self.store, brand_id=brand_id, now=self.clock.now())
            except Conflict:
                log.info("brand %s is already being rebuilt elsewhere", brand_id)
            except Exception:
                log.exception("rebuilding the leaderboards of brand %s failed", brand_id)

        task = asyncio.create_task(run(), name=f"leaderboards-rebuild-{brand_id}")
        self._tasks[brand_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(brand_id, None) if self._tasks.get(brand_id) is _t else None)
        return task

    async def close_periods(self, *, brand_id: BrandId | None = None) -> list[str]:
        """Close every ended period (exactly once across workers); returns what was closed."""
        return await closing.close_due_periods(
            self.db,
            self.store,
            now=self.clock.now(),
            grant_badge=self.grant_badge,
            brand_id=brand_id,
        )

    async def rebuild(self, *, brand_id: BrandId | None = None, board_key: str | None = None) -> rebuild.RebuildReport:
        """Recompute Redis from SQL for one brand (or all), one board or all of them."""
        brands = [brand_id] if brand_id is not None else None
        return await rebuild.rebuild_all(
            self.db, self.store, now=self.clock.now(), brand_ids=brands, board_key=board_key
        )

    # --- definitions ---------------------------------------------------------------------------------

    async def boards_at(self, session: AsyncSession, brand_id: BrandId, version: int) -> tuple[BoardDef, ...]:
        """The brand's boards at config ``version`` (the pipeline reads the version once per unit of work)."""
        return await self.definitions.at(session, brand_id, version)

    async def boards(self, brand: Brand) -> tuple[BoardDef, ...]:
        """The brand's boards for reads (re-checked against the config version every few seconds)."""
        return await self.definitions.boards(brand)

    async def board(self, brand: Brand, key: str, *, public: bool) -> BoardDef:
        """One board; a publishable key only sees public ones.

        Raises:
            NotFound: no such board (or not public, for a publishable key).
        """
        return (await self.definitions.board(brand, key, public=public))[0]

    async def put_board(self, brand: Brand, spec: BoardSpec) -> tuple[BoardDef, str]:
        """Create or replace a board, then bring Redis in line with it (a new board starts empty)."""
        async with self.db.write() as session:
            board, outcome = await repository.put_board(session, brand_id=brand.id, spec=spec, now=self.clock.now())
        self.definitions.forget(brand.id)
        if outcome != "unchanged":
            await self._sync_after_definition(brand.id, board.key)
        return board, outcome

    async def delete_board(self, brand: Brand, key: str) -> None:
        """Remove a board, its totals, archives and Redis keys."""
        async with self.db.write() as session:
            board = await repository.delete_board(session, brand_id=brand.id, key=key)
        self.definitions.forget(brand.id)
        try:
            await self.store.delete(await self.store.scan(keys.board_pattern(self.namespace, brand.id, board.key)))
        except RedisError as exc:
            self.catch_up.mark(brand.id, exc)  # the catch-up's rebuild deletes the keys SQL no longer accounts for

    async def _sync_after_definition(self, brand_id: BrandId, board_key: str) -> None:
        if self.breaker.is_open:
            self.catch_up.mark(brand_id)
            return
        try:
            if await self.store.is_ready(brand_id):
                await rebuild.rebuild_brand(
                    self.db, self.store, brand_id=brand_id, now=self.clock.now(), board_key=board_key
                )
            else:
                await rebuild.rebuild_brand(self.db, self.store, brand_id=brand_id, now=self.clock.now())
        except Conflict:
            self.schedule_rebuild(brand_id)
        except RedisError as exc:
            self.catch_up.mark(brand_id, exc)

    def summaries(self, boards: Sequence[BoardDef], *, public: bool) -> list[BoardSummary]:
        """What boards are, as a widget may see them."""
        return [summary(b) for b in boards if b.visibility == "public" or not public]

    # --- privacy -------------------------------------------------------------------------------------

    async def set_preference(self, brand: Brand, external_id: str, preference: Preference) -> Preference:
        """Store how a member appears, and add or remove them on the public boards accordingly.

        Raises:
            NotFound: no such member.
        """
        try:
            return await privacy.set_preference(
                self.db, self.store, brand, external_id, preference, now=self.clock.now()
            )
        except RedisError as exc:  # stored in SQL first: Redis follows when the boards catch up
            self.catch_up.mark(brand.id, exc)
        return await privacy.get_preference(self.db, brand, external_id)

    async def refresh_member(self, brand: Brand, member_id: MemberId) -> None:
        """Rewrite a member's entry in the brand's directory (after their name or attributes changed)."""
        try:
            await privacy.refresh_member(self.db, self.store, brand, member_id)
        except RedisError as exc:
            self.catch_up.mark(brand.id, exc)

    async def get_preference(self, brand: Brand, external_id: str) -> Preference:
        """A member's display preference.

        Raises:
            NotFound: no such member.
        """
        return await privacy.get_preference(self.db, brand, external_id)

    # --- reads ---------------------------------------------------------------------------------------

    async def read(
        self,
        brand: Brand,
        key: str,
        *,
        period: str = "current",
        scope: str | None = None,
        offset: int = 0,
        limit: int = 10,
        around: str | None = None,
        k: int = 5,
        members: Sequence[str] = (),
        public: bool = False,
        charge: Charge | None = None,
    ) -> BoardPage:
        """A page of a board's period, with a member's neighbourhood and friends' ranks when asked.

        ``charge``: a token bucket the Redis read takes from in its own call (see
        :meth:`BoardStore.read`); it stays unsettled when the page comes from SQL.

        Raises:
            Refused: the charge's bucket was empty (nothing was read).
            NotFound: no such board, or ``around`` names no member.
            ValidationError: a bad period id, a missing scope on a scoped board, too many members.
        """
        if len(members) > MAX_FRIENDS:
            raise ValidationError(f"at most {MAX_FRIENDS} members at once", field="members")
        board, board_summary = await self.definitions.board(brand, key, public=public)
        now = self.clock.now()
        current = self.definitions.current(brand, board, now)
        ref = current if period == "current" else ranking.period_from_id(board, period, brand.tz)
        if board.scope is None:
            scope = ""
        elif scope is None:
            if not around:
                raise ValidationError(f"this board is kept per `{board.scope}`: give `scope`", field="scope")
            scope = await reads.scope_of_member(self.db, brand, board, around)
        view = reads.View(
            brand=brand,
            board=board,
            summary=board_summary,
            period=ref,
            current=current.id == ref.id,
            scope=scope,
            offset=offset,
            limit=limit,
            around=around,
            members=members,
            public=public,
        )
        slot = Slot(brand_id=brand.id, board=board, period=ref, scope=scope)
        # Only a period that has ended can be closed; the current one costs no SQL here.
        if ref.ends_at is not None and ref.ends_at <= now:
            async with self.db.read() as session:
                state = await repository.get_period(session, board_id=board.id, period=ref.id)
            if state is not None and state.closed_at is not None:
                return await reads.read_sql(self.db, view, slot, k=k, source="archive")
        if self.breaker.is_open or self.catch_up.stale_since(brand.id) is not None:
            # Redis is down, or missed writes that are not caught up yet: the SQL totals are complete.
            return await reads.read_sql(self.db, view, slot, k=k, source="sql")
        try:
            snap = await self.store.read(
                slot, offset=offset, limit=limit, around=around, k=k, friends=members, charge=charge
            )
        except RedisError:
            return await reads.read_sql(self.db, view, slot, k=k, source="sql")
        if snap is None:
            self.schedule_rebuild(brand.id)
            return await reads.read_sql(self.db, view, slot, k=k, source="sql")
        if around and snap.me_id is None:
            await reads.member_id_of(self.db, brand, around)  # not in the brand's directory: is it a member at all?
        listings = snap.listings
        brand_id = brand.id

        def show(member_id: int) -> tuple[str | None, str]:
            found = listings.get(member_id)
            if found is None or not found[1]:
                return None, ranking.pseudonym_for(brand_id, member_id)
            return found[0], found[1]

        return view.page(snap, show, me_id=snap.me_id, friends=snap.friends, source="redis")
