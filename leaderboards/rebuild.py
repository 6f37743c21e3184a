"""Rebuild Redis from SQL: every open (and still retained closed) period of every board, key by key.

Each sorted set is filled under a temporary key in its slot and renamed over the live one, so readers
see the old or the new set, never half of one. Keys the SQL no longer accounts for are deleted. Totals
written while the rebuild ran are applied again at the end (absolute writes, so that is harmless). A
brand's sentinel key is written last: its absence is how a flushed or restarted Redis is detected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.errors import Conflict, NotFound
from engine.ids import BrandId
from engine.tenants import get_brand_by_id
from leaderboards import keys, ranking, repository
from leaderboards.models import BoardDef, PeriodRef, PeriodState, Total
from leaderboards.orm import BoardRow
from leaderboards.store import BoardStore, Listing, Slot, Write, listing

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from engine.db import Database

log = logging.getLogger(__name__)
RACE_MARGIN = timedelta(seconds=5)


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


def is_listed(board: BoardDef, *, units: int, member_id: int, hidden: set[int]) -> bool:
    """Whether a total appears on the board in Redis (above the minimum, not opted out of a public board)."""
    return ranking.qualifies(board, units) and not (board.visibility == "public" and member_id in hidden)


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
    token = await store.lock_rebuild(brand_id)
    if token is None:
        raise Conflict(f"brand {brand_id} is being rebuilt by another worker", field="brand")
    try:
        return await _rebuild(db, store, brand_id=brand_id, now=now, board_key=board_key)
    finally:
        await store.unlock_rebuild(brand_id, token)


async def _rebuild(
    db: Database, store: BoardStore, *, brand_id: BrandId, now: datetime, board_key: str | None
) -> RebuildReport:
    report = RebuildReport(brands=1)
    started = now
    namespace = store.namespace
    written: set[str] = set()
    async with db.read() as session:
        brand = await get_brand_by_id(session, brand_id)
        boards = await repository.load_boards(session, brand_id=brand_id)
        if board_key is not None:
            boards = tuple(b for b in boards if b.key == board_key)
            if not boards:
                raise NotFound(f"no leaderboard {board_key!r}", field="board")
        hidden = await repository.all_opted_out(session, brand_id=brand_id)
        for board in boards:
            report.boards += 1
            for state in await repository.board_periods(session, board_id=board.id):
                ttl: int | None = None
                if state.closed_at is not None:
                    if state.closed_at + timedelta(days=board.retention_days) <= now:
                        continue
                    ttl = ranking.ttl_after_close(state.closed_at, board.retention_days, now)
                period = PeriodRef(id=state.period, starts_at=state.starts_at, ends_at=state.ends_at)
                by_scope: dict[str, list[tuple[int, float]]] = {}
                for total in await repository.totals_for(session, board_id=board.id, period=state.period):
                    if is_listed(board, units=total.units, member_id=total.member_id, hidden=hidden):
                        score = ranking.redis_score(board, period, total.units, total.reached_at)
                        by_scope.setdefault(total.scope, []).append((total.member_id, score))
                for scope, entries in by_scope.items():
                    slot = Slot(brand_id=brand_id, board=board, period=period, scope=scope)
                    await store.replace(slot, entries, ttl=ttl)
                    written.update(store.slot_keys(slot))
                    report.keys += 1
                    report.members += len(entries)
            # The directory reads resolve external ids and labels with: everyone holding a total on the board.
            directory = [
                listing(brand_id, board, info)
                for info in await repository.board_members(session, brand_id=brand_id, board_id=board.id)
            ]
            await store.replace_directory(brand_id, board.key, directory)
            written.update(store.directory_keys(brand_id, board.key))
    patterns = (
        [keys.board_pattern(namespace, brand_id, b.key) for b in boards]
        if board_key is not None
        else [keys.brand_pattern(namespace, brand_id)]
    )
    stale: list[str] = []
    for pattern in patterns:
        stale.extend(k for k in await store.scan(pattern) if k not in written)
    await store.delete(stale)
    report.deleted = len(stale)
    await _replay(db, store, brand_id=brand_id, since=started - RACE_MARGIN, boards=boards, tz=brand.tz)
    await store.mark_board_ready(brand_id, [b.key for b in boards])
    if board_key is None:
        await store.mark_ready(brand_id, at=now)
    log.info("rebuilt leaderboards of brand %s: %s keys, %s members", brand_id, report.keys, report.members)
    return report


async def _replay(
    db: Database, store: BoardStore, *, brand_id: BrandId, since: datetime, boards: tuple[BoardDef, ...], tz: ZoneInfo
) -> None:
    """Write again the totals that changed while the rebuild ran (they may have been renamed over)."""
    by_id = {b.id: b for b in boards}
    async with db.read() as session:
        changed: list[Total] = [
            t
            for t in await repository.totals_changed_since(session, brand_id=brand_id, since=since)
            if t.board_id in by_id
        ]
        if not changed:
            return
        infos = await repository.member_infos(session, brand_id=brand_id, member_ids=[t.member_id for t in changed])
        states: dict[tuple[int, str], PeriodState | None] = {}
        for total in changed:
            pair = (total.board_id, total.period)
            if pair not in states:
                states[pair] = await repository.get_period(session, board_id=total.board_id, period=total.period)
    hidden = {m for m, info in infos.items() if info.opt_out}
    listings: dict[tuple[str, int], Listing] = {}
    writes: list[Write] = []
    for total in changed:
        board = by_id[total.board_id]
        info = infos.get(total.member_id)
        if info is not None:
            listings[(board.key, total.member_id)] = listing(brand_id, board, info)
        state = states[(total.board_id, total.period)]
        if state is None or state.closed_at is not None:
            continue
        period = ranking.period_from_id(board, total.period, tz)
        slot = Slot(brand_id=brand_id, board=board, period=period, scope=total.scope)
        listed = is_listed(board, units=total.units, member_id=total.member_id, hidden=hidden)
        writes.append(
            Write(slot=slot, member_id=total.member_id, units=total.units, reached_at=total.reached_at, listed=listed)
        )
    await store.apply(writes, listings=list(listings.values()))


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
