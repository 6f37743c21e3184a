"""Rebuild Redis from SQL: every open (and still retained closed) period of every board, key by key.

Each sorted set is filled under a temporary key in its slot and renamed over the live one, so readers
see the old or the new set, never half of one. Keys the SQL no longer accounts for are deleted. A
brand's sentinel key is written last: its absence is how a flushed or restarted Redis is detected.

Writes go on while a rebuild runs (events, preference and profile changes), and a rename may put an
older value over one of them. So before it reads SQL the rebuild starts the brand's *rebuild log*:
every write appends what it changed (standing on a slot, directory entry) in the same ``MULTI`` as the
write itself. Once the renames and deletions are done, the entries logged so far are read again from
SQL and written by :meth:`BoardStore.settle`, atomically (``WATCH`` on the log) skipping whatever was
logged after that point: those writes landed after the renames, so Redis already holds them. No clock
is involved, and no interleaving leaves Redis different from what a fresh rebuild would make it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.errors import Conflict, NotFound
from engine.ids import BrandId
from engine.periods import retention_seconds
from engine.tenants import get_brand_by_id
from leaderboards import keys, people_repo, ranking, repository, totals_repo
from leaderboards.models import BoardDef, MemberInfo, PeriodRef, PeriodState, Total
from leaderboards.orm import BoardRow
from leaderboards.slots import Listing, Slot, Write, decode_entry, listing

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from leaderboards.maintenance import SlotFiller
    from leaderboards.store import BoardStore

log = logging.getLogger(__name__)
LOCK_SECONDS = 300
CHUNK = 10_000
"""Rows per step when a rebuild streams totals and members from SQL to Redis (bounds its memory)."""
LOG_SECONDS = 3600
"""How long the rebuild log lives: a rebuild still running by then fails (and is retried) rather than guess."""


@dataclass(slots=True)
class RebuildReport:
    """What a rebuild wrote."""

    brands: int = 0
    boards: int = 0
    keys: int = 0
    members: int = 0
    deleted: int = 0
    skipped: list[int] = field(default_factory=list)
    """Brands another worker was rebuilding at the time."""
    written: set[str] = field(default_factory=set, repr=False)
    """The keys this rebuild wrote (the others of the brand are stale)."""


async def brands_with_boards(db: Database) -> list[BrandId]:
    """Every brand that defines at least one board."""
    async with db.read() as session:
        rows = await session.scalars(select(BoardRow.brand_id).distinct().order_by(BoardRow.brand_id))
        return [BrandId(r) for r in rows]


async def rebuild_brand(
    db: Database, store: BoardStore, *, brand_id: BrandId, now: datetime, board_key: str | None = None
) -> RebuildReport:
    """Make the brand's Redis boards (or one board) identical to what SQL says.

    Raises:
        NotFound: ``board_key`` names no board of the brand.
        Conflict: another worker is rebuilding this brand right now.
    """
    token = await store.lock_rebuild(brand_id, seconds=LOCK_SECONDS)
    if token is None:
        raise Conflict(f"brand {brand_id} is being rebuilt by another worker", field="brand")
    try:
        # Logging starts before anything is read from SQL: a write the reads miss is in the log.
        await store.begin_log(brand_id, seconds=LOG_SECONDS)
        try:
            return await _rebuild(db, store, brand_id=brand_id, now=now, board_key=board_key)
        finally:
            await store.end_log(brand_id)
    finally:
        await store.unlock_rebuild(brand_id, token)


async def _rebuild(
    db: Database, store: BoardStore, *, brand_id: BrandId, now: datetime, board_key: str | None
) -> RebuildReport:
    report = RebuildReport(brands=1)
    namespace = store.namespace
    async with db.read() as session:
        brand = await get_brand_by_id(session, brand_id)
        boards = await repository.load_boards(session, brand_id=brand_id)
        if board_key is not None:
            boards = tuple(b for b in boards if b.key == board_key)
            if not boards:
                raise NotFound(f"no leaderboard {board_key!r}", field="board")
        hidden = await people_repo.all_opted_out(session, brand_id=brand_id)
    # The standings and the brand's directory (reads resolve external ids and labels with it: everyone holding
    # a total) are filled side by side, each on its own connection, so one's database and Redis waits
    # overlap the other's work. Each reads its own snapshot: what changed in between is in the rebuild log,
    # which the settling below applies.
    # A failure of either is raised as it is (callers catch Redis and database errors), the other cancelled.
    both = (
        asyncio.ensure_future(
            _rebuild_boards(db, store, brand_id=brand_id, boards=boards, hidden=hidden, now=now, report=report)
        ),
        asyncio.ensure_future(_rebuild_directory(db, store, brand_id=brand_id, board=boards[0] if board_key else None)),
    )
    try:
        await asyncio.gather(*both)
    except BaseException:
        for task in both:
            task.cancel()
        await asyncio.gather(*both, return_exceptions=True)
        raise
    patterns = (
        [keys.board_pattern(namespace, brand_id, b.key) for b in boards]
        if board_key is not None
        else [keys.brand_pattern(namespace, brand_id)]
    )
    stale: list[str] = []
    for pattern in patterns:
        stale.extend(k for k in await store.scan(pattern) if k not in report.written)
    await store.delete(stale)
    report.deleted = len(stale)
    await _settle(db, store, brand_id=brand_id, boards=boards, tz=brand.tz, now=now)
    await store.mark_board_ready(brand_id, [b.key for b in boards])
    if board_key is None:
        await store.mark_ready(brand_id, at=now)
    log.info("rebuilt leaderboards of brand %s: %s keys, %s members", brand_id, report.keys, report.members)
    return report


async def _rebuild_boards(
    db: Database,
    store: BoardStore,
    *,
    brand_id: BrandId,
    boards: tuple[BoardDef, ...],
    hidden: set[int],
    now: datetime,
    report: RebuildReport,
) -> None:
    """Replace every stored period of ``boards`` with its SQL totals."""
    async with db.read() as session:
        for board in boards:
            report.boards += 1
            for state in await repository.board_periods(session, board_id=board.id):
                await _rebuild_period(
                    session, store, brand_id=brand_id, board=board, state=state, hidden=hidden, now=now, report=report
                )


async def _rebuild_period(
    session: AsyncSession,
    store: BoardStore,
    *,
    brand_id: BrandId,
    board: BoardDef,
    state: PeriodState,
    hidden: set[int],
    now: datetime,
    report: RebuildReport,
) -> None:
    """Replace the keys of one stored period (every scope value) with its SQL totals; skip it once past retention."""
    ttl: int | None = None
    if state.closed_at is not None:
        if state.closed_at + timedelta(days=board.retention_days) <= now:
            return
        ttl = retention_seconds(state.closed_at, board.retention_days, now)
    period = PeriodRef(id=state.period, starts_at=state.starts_at, ends_at=state.ends_at)
    fillers: dict[str, SlotFiller] = {}
    # Streamed: SQL hands over CHUNK rows at a time and each scope's keys are filled aside as they come.
    await _fill_period(
        session,
        store,
        brand_id=brand_id,
        board=board,
        period=period,
        hidden=hidden,
        fillers=fillers,
        period_id=state.period,
    )
    for scope, fill in fillers.items():
        await fill.finish(ttl=ttl)
        report.written.update(store.slot_keys(Slot(brand_id=brand_id, board=board, period=period, scope=scope)))
        report.keys += 1
        report.members += fill.members


async def _fill_period(
    session: AsyncSession,
    store: BoardStore,
    *,
    brand_id: BrandId,
    board: BoardDef,
    period: PeriodRef,
    period_id: str,
    hidden: set[int],
    fillers: dict[str, SlotFiller],
) -> None:
    async for rows in totals_repo.stream_totals(session, board_id=board.id, period=period_id, chunk=CHUNK):
        by_scope: dict[str, list[tuple[int, float]]] = {}
        for member_id, scope, units, reached_at in rows:
            if ranking.is_listed(board, units=units, member_id=member_id, hidden=hidden):
                score = ranking.redis_score(board, period, units, reached_at)
                by_scope.setdefault(scope, []).append((member_id, score))
        for scope, entries in by_scope.items():
            fill = fillers.get(scope)
            if fill is None:
                fill = fillers[scope] = store.filler(Slot(brand_id=brand_id, board=board, period=period, scope=scope))
            await fill.add(entries)


async def _rebuild_directory(db: Database, store: BoardStore, *, brand_id: BrandId, board: BoardDef | None) -> None:
    """Refill the brand's directory from SQL, streamed; for one board's rebuild, (re)write that board's members only.

    A whole rebuild fills a scratch copy and renames it over the directory (members without totals drop
    out); one board's rebuild cannot know who else the other boards hold, so it only adds.
    """
    token = "" if board is not None else secrets.token_hex(6)
    filled = False
    async with db.read() as session:
        async for values in people_repo.stream_directory(
            session, brand_id=brand_id, chunk=CHUNK, board_id=board.id if board is not None else None
        ):
            await store.add_directory_values(brand_id, values, into=token)
            filled = filled or bool(values)
    if token:
        await store.swap_directory(brand_id, token, filled=filled)


async def _settle(
    db: Database, store: BoardStore, *, brand_id: BrandId, boards: tuple[BoardDef, ...], tz: ZoneInfo, now: datetime
) -> None:
    """Write again, from SQL, what was written while the rebuild ran (a rename may have put older values over it).

    Raises:
        RuntimeError: the rebuild log expired (the rebuild ran too long to know what changed meanwhile).
    """
    found = await store.logged(brand_id)
    if found is None:
        raise RuntimeError(f"the rebuild log of brand {brand_id} expired; the rebuild is retried")
    start, raw_entries = found
    by_key = {b.key: b for b in boards}
    standings, directory = _logged_entries(raw_entries, by_key)
    state = await _logged_state(db, brand_id=brand_id, by_key=by_key, standings=standings, directory=directory)
    writes = [
        _settled_write(
            state,
            brand_id=brand_id,
            board=by_key[board_key],
            key=(board_key, period_id, scope, member_id),
            tz=tz,
            now=now,
        )
        for board_key, period_id, scope, member_id in sorted(standings)
    ]
    listings: list[Listing] = []
    forget: list[int] = []
    holders = {m for _board_id, m in state.held}
    for member_id in sorted(directory):
        info = state.infos.get(member_id)
        if info is not None and member_id in holders:
            listings.append(listing(brand_id, info))
        else:
            forget.append(member_id)
    if not await store.settle(brand_id, start=start, writes=writes, listings=listings, forget=forget):
        raise RuntimeError(f"the rebuild log of brand {brand_id} expired; the rebuild is retried")


def _logged_entries(
    raw_entries: list[bytes | str], by_key: dict[str, BoardDef]
) -> tuple[set[tuple[str, str, str, int]], set[int]]:
    """The log's (board, period, scope, member) standings of these boards and the members of directory entries."""
    standings: set[tuple[str, str, str, int]] = set()
    directory: set[int] = set()
    for raw in set(raw_entries):
        entry = decode_entry(raw)
        if entry[0] == "n":
            directory.add(int(entry[1]))
        elif entry[1] in by_key:  # else a board this rebuild did not touch
            standings.add((entry[1], entry[2], entry[3], int(entry[4])))
    return standings, directory


@dataclass(slots=True)
class _Logged:
    """What SQL holds now for the members and periods the rebuild log names."""

    totals: dict[tuple[int, str, str, int], Total] = field(default_factory=dict)
    held: set[tuple[int, int]] = field(default_factory=set)
    """(board id, member id) of every total the members hold."""
    infos: dict[int, MemberInfo] = field(default_factory=dict)
    states: dict[tuple[int, str], PeriodState | None] = field(default_factory=dict)
    hidden: set[int] = field(default_factory=set)


async def _logged_state(
    db: Database,
    *,
    brand_id: BrandId,
    by_key: dict[str, BoardDef],
    standings: set[tuple[str, str, str, int]],
    directory: set[int],
) -> _Logged:
    """Read the logged members' totals, names and the logged periods' states from SQL."""
    members = sorted({m for *_rest, m in standings} | directory)
    found = _Logged()
    async with db.read() as session:
        for member_id in members:
            for total in await totals_repo.member_totals(session, brand_id=brand_id, member_id=member_id):
                found.totals[(total.board_id, total.period, total.scope, member_id)] = total
                found.held.add((total.board_id, member_id))
        found.infos = await people_repo.member_infos(session, brand_id=brand_id, member_ids=members)
        for board_key, period_id, _scope, _member in standings:
            pair = (by_key[board_key].id, period_id)
            if pair not in found.states:
                found.states[pair] = await repository.get_period(session, board_id=pair[0], period=period_id)
    found.hidden = {m for m, info in found.infos.items() if info.opt_out}
    return found


def _settled_write(
    state: _Logged, *, brand_id: BrandId, board: BoardDef, key: tuple[str, str, str, int], tz: ZoneInfo, now: datetime
) -> Write:
    """What a fresh rebuild makes of one logged standing: listed on a kept period if the total qualifies, else absent."""
    _board_key, period_id, scope, member_id = key
    total = state.totals.get((board.id, period_id, scope, member_id))
    period_state = state.states[(board.id, period_id)]
    kept = period_state is not None and (
        period_state.closed_at is None or period_state.closed_at + timedelta(days=board.retention_days) > now
    )
    listed = (
        total is not None
        and kept
        and ranking.is_listed(board, units=total.units, member_id=member_id, hidden=state.hidden)
    )
    return Write(
        slot=Slot(brand_id=brand_id, board=board, period=ranking.period_from_id(board, period_id, tz), scope=scope),
        member_id=member_id,
        units=total.units if total is not None else 0,
        reached_at=total.reached_at if total is not None else ranking.EPOCH,
        listed=listed,
    )


async def rebuild_all(
    db: Database,
    store: BoardStore,
    *,
    now: datetime,
    brand_ids: list[BrandId] | None = None,
    board_key: str | None = None,
) -> RebuildReport:
    """Rebuild every brand with boards (or the given ones); brands another worker is rebuilding are skipped."""
    report = RebuildReport()
    for brand_id in brand_ids if brand_ids is not None else await brands_with_boards(db):
        try:
            one = await rebuild_brand(db, store, brand_id=brand_id, now=now, board_key=board_key)
        except Conflict:
            report.skipped.append(brand_id)
            continue
        except NotFound:
            if board_key is None:
                raise
            continue
        report.brands += 1
        report.boards += one.boards
        report.keys += one.keys
        report.members += one.members
        report.deleted += one.deleted
    return report


async def ensure_ready(db: Database, store: BoardStore, *, now: datetime) -> list[BrandId]:
    """Rebuild every brand whose sentinel is missing (Redis flushed, restarted or new); returns them."""
    missing = [b for b in await brands_with_boards(db) if not await store.is_ready(b)]
    if missing:
        await rebuild_all(db, store, now=now, brand_ids=missing)
    return missing
