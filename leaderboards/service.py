"""The leaderboards at run time: definitions, reads, privacy, rebuild scheduling and the period closer.

One :class:`Leaderboards` lives per app process (``services.extras["leaderboards"]``). It owns the
:class:`BoardStore`, the definition cache, the background tasks that repair a flushed Redis, and the loop
that closes ended periods.

A read of a live period costs one Redis round trip and no SQL: the board's directory in Redis (written
with the totals, rebuilt with them) turns external ids into members and members into labels. SQL is
read only for a closed period (the archive), while Redis is being rebuilt, and to tell an unknown
``around`` member (404) from one without a total on the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import Conflict, NotFound, ValidationError
from engine.ids import BrandId, MemberId
from leaderboards import archive_repo, closing, people_repo, ranking, rebuild, repository, totals_repo
from leaderboards.models import (
    BoardDef,
    BoardPage,
    BoardSpec,
    BoardSummary,
    Entry,
    MemberInfo,
    MemberStanding,
    PeriodOut,
    PeriodRef,
    Placed,
    Preference,
)
from leaderboards.processor import LeaderboardsProcessor
from leaderboards.store import BoardStore, Listing, Slot, Snapshot, Write, listing

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.clock import Clock
    from engine.db import Database
    from engine.tenants import Brand

log = logging.getLogger(__name__)
MAX_LIMIT = 100
MAX_AROUND = 25
MAX_FRIENDS = 100


class Leaderboards:
    """Everything the leaderboards need at run time, built once per process."""

    def __init__(
        self,
        db: Database,
        redis: Redis,
        *,
        namespace: str,
        clock: Clock,
        extras: dict[str, Any] | None = None,
        close_interval: float | None = 60.0,
        definitions_ttl: float = 2.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.namespace = namespace
        self.store = BoardStore(redis, namespace=namespace)
        self.cache = repository.BoardCache()
        self.extras = extras if extras is not None else {}
        self.close_interval = close_interval
        self._definitions_ttl = definitions_ttl
        self._read_boards: dict[BrandId, _Definitions] = {}
        self._loading: dict[BrandId, asyncio.Future[_Definitions]] = {}
        self._generations: dict[BrandId, int] = {}
        self._periods: dict[tuple[Any, ...], PeriodRef] = {}
        self._tasks: dict[BrandId, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None

    def processor(self) -> LeaderboardsProcessor:
        """The pipeline step."""
        return LeaderboardsProcessor(self)

    # --- life cycle ----------------------------------------------------------------------------------

    async def start(self, *, rebuild_now: bool) -> None:
        """Rebuild brands whose sentinel is missing (now, or in the background), and start the period closer."""
        if rebuild_now:
            await rebuild.ensure_ready(self.db, self.store, now=self.clock.now())
        else:
            self._spawn_ensure_ready()
        if self.close_interval and self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(self.close_interval), name="leaderboards-closer")

    async def stop(self) -> None:
        """Cancel the background work (the period closer and running rebuilds)."""
        tasks = [t for t in [self._ticker, *self._tasks.values()] if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ticker = None
        self._tasks.clear()

    async def _tick(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.close_periods()
                await rebuild.ensure_ready(self.db, self.store, now=self.clock.now())
            except Exception:
                # A failed round is retried on the next tick; closing is idempotent (claimed in SQL).
                log.exception("leaderboard maintenance failed; retrying in %ss", interval)

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
            grant_badge=self.extras.get("badges.grant"),
            brand_id=brand_id,
        )

    async def rebuild(self, *, brand_id: BrandId | None = None, board_key: str | None = None) -> rebuild.RebuildReport:
        """Recompute Redis from SQL for one brand (or all), one board or all of them."""
        brands = [brand_id] if brand_id is not None else None
        return await rebuild.rebuild_all(
            self.db, self.store, now=self.clock.now(), brand_ids=brands, board_key=board_key
        )

    # --- definitions ---------------------------------------------------------------------------------

    async def boards(self, brand: Brand) -> tuple[BoardDef, ...]:
        """The brand's boards for reads (re-checked against the config version every few seconds)."""
        return (await self._definitions(brand)).boards

    async def _definitions(self, brand: Brand) -> _Definitions:
        hit = self._read_boards.get(brand.id)
        if hit is not None and hit.expires > time.monotonic():
            return hit
        loading = self._loading.get(brand.id)
        if loading is None:
            # One query per process when the cache expires, however many reads arrive meanwhile: they
            # all wait for it (a cancelled read does not cancel it for the others).
            loading = asyncio.ensure_future(self._load_definitions(brand.id))
            self._loading[brand.id] = loading
        return await asyncio.shield(loading)

    async def _load_definitions(self, brand_id: BrandId) -> _Definitions:
        generation = self._generations.get(brand_id, 0)
        try:
            async with self.db.read() as session:
                boards = await self.cache.boards(session, brand_id)
        finally:
            if self._loading.get(brand_id) is asyncio.current_task():
                del self._loading[brand_id]
        previous = self._read_boards.get(brand_id)
        by_key = (
            previous.by_key
            if previous is not None and previous.boards is boards
            else {b.key: (b, summary(b)) for b in boards}
        )
        found = _Definitions(time.monotonic() + self._definitions_ttl, boards, by_key)
        if generation == self._generations.get(brand_id, 0):  # not invalidated while it loaded
            self._read_boards[brand_id] = found
        return found

    def _forget_definitions(self, brand_id: BrandId) -> None:
        """Drop the cached definitions after a change here (other processes notice within the TTL)."""
        self._read_boards.pop(brand_id, None)
        self._loading.pop(brand_id, None)
        self._generations[brand_id] = self._generations.get(brand_id, 0) + 1

    async def board(self, brand: Brand, key: str, *, public: bool) -> BoardDef:
        """One board; a publishable key only sees public ones.

        Raises:
            NotFound: no such board (or not public, for a publishable key).
        """
        return (await self._board(brand, key, public=public))[0]

    async def _board(self, brand: Brand, key: str, *, public: bool) -> tuple[BoardDef, BoardSummary]:
        found = (await self._definitions(brand)).by_key.get(key)
        if found is None or (public and found[0].visibility != "public"):
            raise NotFound(f"no leaderboard {key!r}", field="key")
        return found

    def _current(self, brand: Brand, board: BoardDef, now: datetime) -> PeriodRef:
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
        if len(self._periods) > 10_000:
            self._periods.clear()
        self._periods[cache_key] = ref
        return ref

    async def put_board(self, brand: Brand, spec: BoardSpec) -> tuple[BoardDef, str]:
        """Create or replace a board, then bring Redis in line with it (a new board starts empty)."""
        async with self.db.write() as session:
            board, outcome = await repository.put_board(session, brand_id=brand.id, spec=spec, now=self.clock.now())
        self._forget_definitions(brand.id)
        if outcome != "unchanged":
            await self._sync_after_definition(brand.id, board.key)
        return board, outcome

    async def delete_board(self, brand: Brand, key: str) -> None:
        """Remove a board, its totals, archives and Redis keys."""
        async with self.db.write() as session:
            board = await repository.delete_board(session, brand_id=brand.id, key=key)
        self._forget_definitions(brand.id)
        from leaderboards import keys

        await self.store.delete(await self.store.scan(keys.board_pattern(self.namespace, brand.id, board.key)))

    async def _sync_after_definition(self, brand_id: BrandId, board_key: str) -> None:
        try:
            if await self.store.is_ready(brand_id):
                await rebuild.rebuild_brand(
                    self.db, self.store, brand_id=brand_id, now=self.clock.now(), board_key=board_key
                )
            else:
                await rebuild.rebuild_brand(self.db, self.store, brand_id=brand_id, now=self.clock.now())
        except Conflict:
            self.schedule_rebuild(brand_id)

    def summaries(self, boards: Sequence[BoardDef], *, public: bool) -> list[BoardSummary]:
        """What boards are, as a widget may see them."""
        return [summary(b) for b in boards if b.visibility == "public" or not public]

    # --- privacy -------------------------------------------------------------------------------------

    async def set_preference(self, brand: Brand, external_id: str, preference: Preference) -> Preference:
        """Store how a member appears, and add or remove them on the public boards accordingly.

        Raises:
            NotFound: no such member.
        """
        async with self.db.write() as session:
            ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
            if external_id not in ids:
                raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
            member_id = ids[external_id]
            await people_repo.save_preference(
                session,
                brand_id=brand.id,
                member_id=member_id,
                opt_out=preference.opt_out,
                display=preference.display,
                pseudonym=preference.pseudonym,
                now=self.clock.now(),
            )
            totals = await totals_repo.member_totals(session, brand_id=brand.id, member_id=member_id)
            boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand.id)}
            states = {
                (t.board_id, t.period): await repository.get_period(session, board_id=t.board_id, period=t.period)
                for t in totals
            }
            info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id]))[member_id]
        # The boards' directories change with the preference (labels; none kept while opted out of a public board).
        listings: dict[str, Listing] = {}
        writes: list[Write] = []
        for total in totals:
            board = boards.get(total.board_id)
            if board is None:
                continue
            listings[board.key] = listing(brand.id, board, info)
            state = states[(total.board_id, total.period)]
            if state is None or state.closed_at is not None:
                continue
            period = ranking.period_from_id(board, total.period, brand.tz)
            listed = ranking.qualifies(board, total.units) and not (board.visibility == "public" and preference.opt_out)
            writes.append(
                Write(
                    slot=Slot(brand_id=brand.id, board=board, period=period, scope=total.scope),
                    member_id=member_id,
                    units=total.units,
                    reached_at=total.reached_at,
                    listed=listed,
                )
            )
        await self.store.apply(writes, listings=list(listings.values()))
        return preference

    async def refresh_member(self, brand: Brand, member_id: MemberId) -> None:
        """Rewrite a member's entries in the boards' directories (after their name or attributes changed).

        Reads show the label kept in Redis; it is rewritten with every new total of the member, a
        preference change and a rebuild. A change of the member's profile alone reaches the boards
        through this (the engine calls it once the change is committed).
        """
        async with self.db.read() as session:
            totals = await totals_repo.member_totals(session, brand_id=brand.id, member_id=member_id)
            if not totals:
                return
            boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand.id)}
            info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id])).get(member_id)
        if info is None:
            return
        held = {t.board_id for t in totals}
        await self.store.apply([], listings=[listing(brand.id, b, info) for b in boards.values() if b.id in held])

    async def get_preference(self, brand: Brand, external_id: str) -> Preference:
        """A member's display preference.

        Raises:
            NotFound: no such member.
        """
        async with self.db.read() as session:
            ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
            if external_id not in ids:
                raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
            info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[ids[external_id]]))[
                ids[external_id]
            ]
        return Preference(opt_out=info.opt_out, display=info.display, pseudonym=info.pseudonym)

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
    ) -> BoardPage:
        """A page of a board's period, with a member's neighbourhood and friends' ranks when asked.

        Raises:
            NotFound: no such board, or ``around`` names no member.
            ValidationError: a bad period id, a missing scope on a scoped board, too many members.
        """
        if len(members) > MAX_FRIENDS:
            raise ValidationError(f"at most {MAX_FRIENDS} members at once", field="members")
        board, board_summary = await self._board(brand, key, public=public)
        now = self.clock.now()
        current = self._current(brand, board, now)
        ref = current if period == "current" else ranking.period_from_id(board, period, brand.tz)
        if board.scope is None:
            scope = ""
        elif scope is None:
            if not around:
                raise ValidationError(f"this board is kept per `{board.scope}`: give `scope`", field="scope")
            scope = await self._scope_of(brand, board, around)
        view = _View(
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
                return await self._read_sql(view, slot, k=k, source="archive")
        snap = await self.store.read(slot, offset=offset, limit=limit, around=around, k=k, friends=members)
        if snap is None:
            self.schedule_rebuild(brand.id)
            return await self._read_sql(view, slot, k=k, source="sql")
        if around and snap.me_id is None:
            await self._member_id(brand, around)  # not on the board's directory: is it a member at all?
        listings = snap.listings
        brand_id = brand.id

        def show(member_id: int) -> tuple[str | None, str]:
            found = listings.get(member_id)
            if found is None or not found[1]:
                return None, ranking.pseudonym_for(brand_id, member_id)
            return found[0], found[1]

        return view.page(snap, show, me_id=snap.me_id, friends=snap.friends, source="redis")

    async def _member_id(self, brand: Brand, external_id: str) -> int:
        """The member's id from SQL.

        Raises:
            NotFound: the brand has no such member.
        """
        async with self.db.read() as session:
            ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
        if external_id not in ids:
            raise NotFound(f"no member {external_id!r} in this brand", field="around")
        return ids[external_id]

    async def _scope_of(self, brand: Brand, board: BoardDef, external_id: str) -> str:
        """The scope value of the member a scoped board is read around (from the directory, else SQL)."""
        found = await self.store.find_member(brand.id, board.key, external_id)
        if found is not None:
            return found[1][2]
        member_id = await self._member_id(brand, external_id)
        async with self.db.read() as session:
            info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id])).get(member_id)
        return ranking.scope_of(board, info.attributes if info else {}) or ""

    async def _read_sql(self, view: _View, slot: Slot, *, k: int, source: Literal["archive", "sql"]) -> BoardPage:
        """The page from SQL: a closed period's archive, or the totals while Redis is being rebuilt."""
        brand = view.brand
        async with self.db.read() as session:
            wanted = [*([view.around] if view.around else []), *view.members]
            ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=wanted)
            if view.around and view.around not in ids:
                raise NotFound(f"no member {view.around!r} in this brand", field="around")
            me_id = ids.get(view.around) if view.around else None
            friend_ids = [ids[m] for m in view.members if m in ids]
            snapshot = self._archive_snapshot if source == "archive" else self._sql_snapshot
            snap = await snapshot(
                session, slot, offset=view.offset, limit=view.limit, me=me_id, k=k, friends=friend_ids
            )
            shown = [p.member_id for p in [*snap.page, *snap.around, *snap.friends.values()]]
            if snap.me is not None:
                shown.append(snap.me.member_id)
            infos = await people_repo.member_infos(session, brand_id=brand.id, member_ids=shown)
        # Archived ranks are history: a member who opted out since is simply not shown.
        hide = (
            {m for m, i in infos.items() if i.opt_out}
            if view.board.visibility == "public" and source == "archive"
            else set()
        )

        def show(member_id: int) -> tuple[str | None, str]:
            info = infos.get(member_id)
            return (None if info is None else info.external_id), _label(brand, view.board, member_id, info)

        friends = {m: snap.friends[ids[m]] for m in view.members if m in ids and ids[m] in snap.friends}
        return view.page(snap, show, me_id=me_id, friends=friends, source=source, hide=hide)

    async def _archive_snapshot(
        self, session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
    ) -> Snapshot:
        board_id, period, scope = slot.board.id, slot.period.id, slot.scope
        total = await archive_repo.archive_count(session, board_id=board_id, period=period, scope=scope)
        snap = Snapshot(ready=True, total=total)
        snap.page = await archive_repo.archive_range(
            session, board_id=board_id, period=period, scope=scope, start=offset, stop=offset + limit - 1
        )
        wanted = ([me] if me is not None else []) + friends
        found = await archive_repo.archive_members(
            session, board_id=board_id, period=period, scope=scope, member_ids=wanted
        )
        snap.me = found.get(me) if me is not None else None
        snap.friends = {m: found[m] for m in friends if m in found}
        if snap.me is not None and k > 0:
            start, stop = ranking.around_bounds(snap.me.position, k, total)
            snap.around = await archive_repo.archive_range(
                session, board_id=board_id, period=period, scope=scope, start=start, stop=stop
            )
        return snap

    async def _sql_snapshot(
        self, session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
    ) -> Snapshot:
        """The same answer computed from the SQL totals (used while Redis is being rebuilt)."""
        board = slot.board
        totals = await totals_repo.totals_for(session, board_id=board.id, period=slot.period.id, scope=slot.scope)
        hidden = await people_repo.opted_out(
            session, brand_id=BrandId(slot.brand_id), member_ids={t.member_id for t in totals}
        )
        scored = [
            (t.member_id, ranking.redis_score(board, slot.period, t.units, t.reached_at))
            for t in totals
            if rebuild.is_listed(board, units=t.units, member_id=t.member_id, hidden=hidden)
        ]
        placed = ranking.place(board, slot.period, scored)
        by_member = {p.member_id: p for p in placed}
        snap = Snapshot(ready=False, total=len(placed), page=placed[offset : offset + limit])
        snap.me = by_member.get(me) if me is not None else None
        snap.friends = {m: by_member[m] for m in friends if m in by_member}
        if snap.me is not None and k > 0:
            start, stop = ranking.around_bounds(snap.me.position, k, len(placed))
            snap.around = placed[start : stop + 1]
        return snap


class _Definitions:
    """A brand's boards as reads see them, with their summaries by key, until ``expires`` (monotonic)."""

    __slots__ = ("boards", "by_key", "expires")

    def __init__(
        self, expires: float, boards: tuple[BoardDef, ...], by_key: dict[str, tuple[BoardDef, BoardSummary]]
    ) -> None:
        self.expires = expires
        self.boards = boards
        self.by_key = by_key


class _View:
    """What one read asked for; turns a snapshot into the :class:`BoardPage` the API answers."""

    __slots__ = (
        "around",
        "board",
        "brand",
        "current",
        "limit",
        "members",
        "offset",
        "period",
        "public",
        "scope",
        "summary",
    )

    def __init__(
        self,
        *,
        brand: Brand,
        board: BoardDef,
        summary: BoardSummary,
        period: PeriodRef,
        current: bool,
        scope: str,
        offset: int,
        limit: int,
        around: str | None,
        members: Sequence[str],
        public: bool,
    ) -> None:
        self.brand = brand
        self.board = board
        self.summary = summary
        self.period = period
        self.current = current
        self.scope = scope
        self.offset = offset
        self.limit = limit
        self.around = around
        self.members = members
        self.public = public

    def page(
        self,
        snap: Snapshot,
        show: Callable[[int], tuple[str | None, str]],
        *,
        me_id: int | None,
        friends: Mapping[str, Placed],
        source: Literal["redis", "archive", "sql"],
        hide: set[int] | frozenset[int] = frozenset(),
    ) -> BoardPage:
        """The API's answer; ``show`` gives a member's external id and label."""
        board, public, total = self.board, self.public, snap.total
        scale = board.scale if board.decimals else 0

        def entry(placed: Placed) -> Entry:
            external_id, label = show(placed.member_id)
            return Entry(
                rank=placed.rank,
                score=placed.units / scale if scale else float(placed.units),
                label=label,
                member=None if public else external_id,
                me=placed.member_id == me_id,
            )

        def standing(external_id: str, placed: Placed | None) -> MemberStanding:
            if placed is None:
                return MemberStanding(member=external_id, rank=None, score=None, percentile=None)
            return MemberStanding(
                member=external_id,
                rank=placed.rank,
                score=ranking.display_score(board, placed.units),
                percentile=ranking.percentile(placed.rank, total),
                label=show(placed.member_id)[1],
            )

        ref = self.period
        return BoardPage(
            board=self.summary,
            period=PeriodOut(
                id=ref.id,
                starts_at=ref.starts_at,
                ends_at=ref.ends_at,
                current=self.current,
                closed=source == "archive",
            ),
            scope=self.scope,
            total=total,
            offset=self.offset,
            limit=self.limit,
            entries=[entry(p) for p in snap.page if p.member_id not in hide],
            me=standing(self.around, snap.me) if self.around else None,
            around=[entry(p) for p in snap.around if p.member_id not in hide] if self.around else None,
            members=[standing(m, friends.get(m)) for m in self.members] if self.members else None,
            source=source,
        )


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


def _label(brand: Brand, board: BoardDef, member_id: int, info: MemberInfo | None) -> str:
    if info is None:
        return ranking.pseudonym_for(brand.id, member_id)
    return ranking.label(
        policy=board.display,
        choice=info.display,
        display_name=info.display_name,
        pseudonym=info.pseudonym,
        brand_id=brand.id,
        member_id=member_id,
    )


async def erase_member(
    session: AsyncSession, redis: Redis, *, namespace: str, brand_id: BrandId, member_id: MemberId
) -> int:
    """Remove a member from every board of the brand (totals, archives, preference, Redis); returns slots touched.

    Runs inside the caller's transaction (the SQL rows go with it); the Redis removal (standings and the
    boards' directories: external id and label) is immediate and absolute, so repeating it is harmless.
    Closed periods keep their totals, so their keys are covered.
    """
    store = BoardStore(redis, namespace=namespace)
    boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand_id)}
    totals = await totals_repo.member_totals(session, brand_id=brand_id, member_id=member_id)
    slots = [
        Slot(
            brand_id=brand_id,
            board=boards[t.board_id],
            period=PeriodRef(id=t.period, starts_at=None, ends_at=None),
            scope=t.scope,
        )
        for t in totals
        if t.board_id in boards
    ]
    await people_repo.erase_member_rows(session, brand_id=brand_id, member_id=member_id)
    await store.remove(slots, member_id)
    # Every board's directory, not only those with totals: nothing that names the member may remain.
    await store.forget_member(brand_id, sorted(b.key for b in boards.values()), member_id)
    return len(slots)
