"""The leaderboards at run time: definitions, reads, privacy, rebuild scheduling and the period closer.

One :class:`Leaderboards` lives per app process (``services.extras["leaderboards"]``). It owns the
:class:`BoardStore`, the definition cache, a short-lived cache of members' display names, the background
tasks that repair a flushed Redis, and the loop that closes ended periods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, NotFound, ValidationError
from engine.ids import BrandId, MemberId
from leaderboards import closing, ranking, rebuild, repository
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
from leaderboards.store import BoardStore, Slot, Snapshot, Write

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.clock import Clock
    from engine.db import Database
    from engine.tenants import Brand

log = logging.getLogger(__name__)
MAX_LIMIT = 100
MAX_AROUND = 25
MAX_FRIENDS = 100


class MemberCache:
    """Display names and ids of members for a few seconds, so a hot board costs no SQL per read."""

    def __init__(self, *, ttl: float = 10.0, size: int = 50_000) -> None:
        self._ttl = ttl
        self._size = size
        self._infos: dict[tuple[int, int], tuple[float, MemberInfo]] = {}
        self._ids: dict[tuple[int, str], tuple[float, int]] = {}

    def forget(self, brand_id: int, member_id: int) -> None:
        """Drop a member (after a preference change or an erasure)."""
        info = self._infos.pop((brand_id, member_id), None)
        if info is not None:
            self._ids.pop((brand_id, info[1].external_id), None)

    async def infos(self, session: AsyncSession, brand_id: BrandId, member_ids: Sequence[int]) -> dict[int, MemberInfo]:
        """Members by id (unknown ids are left out)."""
        now = time.monotonic()
        found: dict[int, MemberInfo] = {}
        missing: list[int] = []
        for member_id in set(member_ids):
            hit = self._infos.get((brand_id, member_id))
            if hit is not None and hit[0] > now:
                found[member_id] = hit[1]
            else:
                missing.append(member_id)
        if missing:
            loaded = await repository.member_infos(session, brand_id=brand_id, member_ids=missing)
            self._trim()
            for member_id, info in loaded.items():
                self._infos[(brand_id, member_id)] = (now + self._ttl, info)
                self._ids[(brand_id, info.external_id)] = (now + self._ttl, member_id)
            found.update(loaded)
        return found

    async def ids(self, session: AsyncSession, brand_id: BrandId, external_ids: Sequence[str]) -> dict[str, int]:
        """Internal ids of members by external id (unknown ones are left out)."""
        now = time.monotonic()
        found: dict[str, int] = {}
        missing: list[str] = []
        for external_id in set(external_ids):
            hit = self._ids.get((brand_id, external_id))
            if hit is not None and hit[0] > now:
                found[external_id] = hit[1]
            else:
                missing.append(external_id)
        if missing:
            loaded = await repository.member_ids_by_external(session, brand_id=brand_id, external_ids=missing)
            self._trim()
            for external_id, member_id in loaded.items():
                self._ids[(brand_id, external_id)] = (now + self._ttl, member_id)
            found.update(loaded)
        return found

    def _trim(self) -> None:
        if len(self._infos) > self._size or len(self._ids) > self._size:
            self._infos.clear()
            self._ids.clear()


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
        self.members = MemberCache()
        self.extras = extras if extras is not None else {}
        self.close_interval = close_interval
        self._definitions_ttl = definitions_ttl
        self._read_boards: dict[BrandId, tuple[float, tuple[BoardDef, ...]]] = {}
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
        hit = self._read_boards.get(brand.id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.read() as session:
            boards = await self.cache.boards(session, brand.id)
        self._read_boards[brand.id] = (now + self._definitions_ttl, boards)
        return boards

    async def board(self, brand: Brand, key: str, *, public: bool) -> BoardDef:
        """One board; a publishable key only sees public ones.

        Raises:
            NotFound: no such board (or not public, for a publishable key).
        """
        for board in await self.boards(brand):
            if board.key == key and (board.visibility == "public" or not public):
                return board
        raise NotFound(f"no leaderboard {key!r}", field="key")

    async def put_board(self, brand: Brand, spec: BoardSpec) -> tuple[BoardDef, str]:
        """Create or replace a board, then bring Redis in line with it (a new board starts empty)."""
        async with self.db.write() as session:
            board, outcome = await repository.put_board(session, brand_id=brand.id, spec=spec, now=self.clock.now())
        self._read_boards.pop(brand.id, None)
        if outcome != "unchanged":
            await self._sync_after_definition(brand.id, board.key)
        return board, outcome

    async def delete_board(self, brand: Brand, key: str) -> None:
        """Remove a board, its totals, archives and Redis keys."""
        async with self.db.write() as session:
            board = await repository.delete_board(session, brand_id=brand.id, key=key)
        self._read_boards.pop(brand.id, None)
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
            ids = await repository.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
            if external_id not in ids:
                raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
            member_id = ids[external_id]
            await repository.save_preference(
                session,
                brand_id=brand.id,
                member_id=member_id,
                opt_out=preference.opt_out,
                display=preference.display,
                pseudonym=preference.pseudonym,
                now=self.clock.now(),
            )
            totals = await repository.member_totals(session, brand_id=brand.id, member_id=member_id)
            boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand.id)}
            states = {
                (t.board_id, t.period): await repository.get_period(session, board_id=t.board_id, period=t.period)
                for t in totals
            }
        self.members.forget(brand.id, member_id)
        writes: list[Write] = []
        for total in totals:
            board = boards.get(total.board_id)
            state = states[(total.board_id, total.period)]
            if board is None or state is None or state.closed_at is not None:
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
        await self.store.apply(writes)
        return preference

    async def get_preference(self, brand: Brand, external_id: str) -> Preference:
        """A member's display preference.

        Raises:
            NotFound: no such member.
        """
        async with self.db.read() as session:
            ids = await repository.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
            if external_id not in ids:
                raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
            info = (await repository.member_infos(session, brand_id=brand.id, member_ids=[ids[external_id]]))[
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
        board = await self.board(brand, key, public=public)
        now = self.clock.now()
        ref = (
            ranking.current_period(board, now, brand.tz)
            if period == "current"
            else ranking.period_from_id(board, period, brand.tz)
        )
        current = ranking.current_period(board, now, brand.tz).id == ref.id
        async with self.db.read() as session:
            wanted = [around] if around else []
            ids = await self.members.ids(session, brand.id, [*wanted, *members]) if wanted or members else {}
            if around and around not in ids:
                raise NotFound(f"no member {around!r} in this brand", field="around")
            me_id = ids.get(around) if around else None
            if board.scope is not None and scope is None:
                if me_id is None:
                    raise ValidationError(f"this board is kept per `{board.scope}`: give `scope`", field="scope")
                info = (await self.members.infos(session, brand.id, [me_id])).get(me_id)
                scope = ranking.scope_of(board, info.attributes if info else {}) or ""
            scope = scope if board.scope is not None else ""
            assert scope is not None
            # Only a period that has ended can be closed; the current one costs no SQL here.
            ended = ref.ends_at is not None and ref.ends_at <= now
            state = await repository.get_period(session, board_id=board.id, period=ref.id) if ended else None
            friend_ids = [ids[m] for m in members if m in ids]
            slot = Slot(brand_id=brand.id, board=board, period=ref, scope=scope)
            source = "redis"
            if state is not None and state.closed_at is not None:
                source = "archive"
                snap = await self._archive_snapshot(
                    session, slot, offset=offset, limit=limit, me=me_id, k=k, friends=friend_ids
                )
            else:
                snap = await self.store.read(slot, offset=offset, limit=limit, member_id=me_id, k=k, friends=friend_ids)
                if not snap.ready:
                    self.schedule_rebuild(brand.id)
                    source = "sql"
                    snap = await self._sql_snapshot(
                        session, slot, offset=offset, limit=limit, me=me_id, k=k, friends=friend_ids
                    )
            shown = [p.member_id for p in [*snap.page, *snap.around]]
            if snap.me is not None:
                shown.append(snap.me.member_id)
            shown.extend(snap.friends)
            infos = await self.members.infos(session, brand.id, shown)
        hide = (
            {m for m, i in infos.items() if i.opt_out}
            if board.visibility == "public" and source == "archive"
            else set()
        )
        return BoardPage(
            board=summary(board),
            period=PeriodOut(
                id=ref.id,
                starts_at=ref.starts_at,
                ends_at=ref.ends_at,
                current=current,
                closed=source == "archive",
            ),
            scope=scope,
            total=snap.total,
            offset=offset,
            limit=limit,
            entries=[
                self._entry(brand, board, p, infos, public=public, me=me_id)
                for p in snap.page
                if p.member_id not in hide
            ],
            me=self._standing(brand, board, around, snap.me, snap.total, infos) if around else None,
            around=[
                self._entry(brand, board, p, infos, public=public, me=me_id)
                for p in snap.around
                if p.member_id not in hide
            ]
            if around
            else None,
            members=[
                self._standing(brand, board, m, snap.friends.get(ids[m]) if m in ids else None, snap.total, infos)
                for m in members
            ]
            if members
            else None,
            source=source,  # type: ignore[arg-type]
        )

    def _entry(
        self,
        brand: Brand,
        board: BoardDef,
        placed: Placed,
        infos: dict[int, MemberInfo],
        *,
        public: bool,
        me: int | None,
    ) -> Entry:
        info = infos.get(placed.member_id)
        return Entry(
            rank=placed.rank,
            score=ranking.display_score(board, placed.units),
            label=_label(brand, board, placed.member_id, info),
            member=None if public or info is None else info.external_id,
            me=placed.member_id == me,
        )

    def _standing(
        self,
        brand: Brand,
        board: BoardDef,
        external_id: str,
        placed: Placed | None,
        total: int,
        infos: dict[int, MemberInfo],
    ) -> MemberStanding:
        if placed is None:
            return MemberStanding(member=external_id, rank=None, score=None, percentile=None)
        return MemberStanding(
            member=external_id,
            rank=placed.rank,
            score=ranking.display_score(board, placed.units),
            percentile=ranking.percentile(placed.rank, total),
            label=_label(brand, board, placed.member_id, infos.get(placed.member_id)),
        )

    async def _archive_snapshot(
        self, session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
    ) -> Snapshot:
        board_id, period, scope = slot.board.id, slot.period.id, slot.scope
        total = await repository.archive_count(session, board_id=board_id, period=period, scope=scope)
        snap = Snapshot(ready=True, total=total)
        snap.page = await repository.archive_range(
            session, board_id=board_id, period=period, scope=scope, start=offset, stop=offset + limit - 1
        )
        wanted = ([me] if me is not None else []) + friends
        found = await repository.archive_members(
            session, board_id=board_id, period=period, scope=scope, member_ids=wanted
        )
        snap.me = found.get(me) if me is not None else None
        snap.friends = {m: found[m] for m in friends if m in found}
        if snap.me is not None and k > 0:
            start, stop = ranking.around_bounds(snap.me.position, k, total)
            snap.around = await repository.archive_range(
                session, board_id=board_id, period=period, scope=scope, start=start, stop=stop
            )
        return snap

    async def _sql_snapshot(
        self, session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
    ) -> Snapshot:
        """The same answer computed from the SQL totals (used while Redis is being rebuilt)."""
        board = slot.board
        totals = await repository.totals_for(session, board_id=board.id, period=slot.period.id, scope=slot.scope)
        hidden = await repository.opted_out(
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

    Runs inside the caller's transaction (the SQL rows go with it); the Redis removal is immediate and
    absolute, so repeating it is harmless. Closed periods keep their totals, so their keys are covered.
    """
    store = BoardStore(redis, namespace=namespace)
    boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand_id)}
    totals = await repository.member_totals(session, brand_id=brand_id, member_id=member_id)
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
    await repository.erase_member_rows(session, brand_id=brand_id, member_id=member_id)
    await store.remove(slots, member_id)
    return len(slots)
