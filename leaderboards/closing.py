"""Period rollover: close ended periods exactly once — archive the final standings, pay the rewards.

A new period starts by time alone (an event simply lands in the period it occurred in). A period is
closed once ``ends_at + grace`` has passed: in one transaction the close is claimed on the period's row
(``UPDATE … WHERE closed_at IS NULL``; only one worker's update can match), its final standings per
scope are written to the archive, and the rewards are posted (points through the ledger, badges through
the :class:`engine.grants.BadgeGranter` the composition root passes). After commit the period's Redis
keys are left to expire after the board's retention.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from engine import publishing
from engine.ids import BrandId, MemberId
from engine.periods import retention_seconds
from engine.points import post_entry
from engine.tenants import get_brand_by_id
from leaderboards import archive_repo, people_repo, ranking, repository, totals_repo
from leaderboards.models import BoardDef, PeriodRef, PeriodState, Placed
from leaderboards.slots import Slot

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.grants import BadgeGranter
    from engine.tenants import Brand
    from leaderboards.store import BoardStore

log = logging.getLogger(__name__)


async def _board_by_id(db: Database, board_id: int, brand_id: BrandId) -> BoardDef | None:
    async with db.read() as session:
        for board in await repository.load_boards(session, brand_id=brand_id):
            if board.id == board_id:
                return board
    return None


async def close_due_periods(
    db: Database,
    store: BoardStore,
    *,
    now: datetime,
    grant_badge: BadgeGranter | None = None,
    brand_id: BrandId | None = None,
) -> list[str]:
    """Close every period whose end plus grace has passed; returns ``<brand>/<board>/<period>`` of each closed."""
    async with db.read() as session:
        due = await repository.due_periods(session, now=now, brand_id=brand_id)
    closed: list[str] = []
    for owner, state in due:
        board = await _board_by_id(db, state.board_id, BrandId(owner))
        if board is None or state.ends_at is None:
            continue
        if state.ends_at + timedelta(minutes=board.grace_minutes) > now:
            continue
        if await close_period(
            db, store, brand_id=BrandId(owner), board=board, state=state, now=now, grant_badge=grant_badge
        ):
            closed.append(f"{owner}/{board.key}/{state.period}")
    return closed


async def close_period(
    db: Database,
    store: BoardStore,
    *,
    brand_id: BrandId,
    board: BoardDef,
    state: PeriodState,
    now: datetime,
    grant_badge: BadgeGranter | None = None,
) -> bool:
    """Archive one period and pay its rewards, unless it is already closed; returns whether this call closed it."""
    period = PeriodRef(id=state.period, starts_at=state.starts_at, ends_at=state.ends_at)
    scopes: list[str] = []
    async with db.write() as session:
        brand = await get_brand_by_id(session, brand_id)
        totals = await totals_repo.totals_for(session, board_id=board.id, period=state.period)
        hidden = await people_repo.opted_out(session, brand_id=brand_id, member_ids={t.member_id for t in totals})
        by_scope: dict[str, list[tuple[int, float]]] = {}
        reached: dict[str, dict[int, datetime]] = {}
        for total in totals:
            if ranking.is_listed(board, units=total.units, member_id=total.member_id, hidden=hidden):
                score = ranking.redis_score(board, period, total.units, total.reached_at)
                by_scope.setdefault(total.scope, []).append((total.member_id, score))
                reached.setdefault(total.scope, {})[total.member_id] = total.reached_at
        standings = {scope: ranking.place(board, period, entries) for scope, entries in by_scope.items()}
        count = sum(len(p) for p in standings.values())
        if not await repository.claim_close(session, board_id=board.id, period=state.period, now=now, members=count):
            return False
        for scope, placed in sorted(standings.items()):
            await archive_repo.write_archive(
                session,
                brand_id=brand_id,
                board_id=board.id,
                period=state.period,
                scope=scope,
                placed=placed,
                reached=reached[scope],
            )
            await _reward(
                session,
                brand=brand,
                board=board,
                period=state.period,
                scope=scope,
                placed=placed,
                now=now,
                grant_badge=grant_badge,
            )
        scopes = sorted({t.scope for t in totals})
        await publishing.publish(
            session, brand_id=brand_id, topic="period.closed", now=now,
            data={"board": board.key, "period": state.period, "members": count, "scopes": scopes},
        )  # fmt: skip
    seconds = retention_seconds(now, board.retention_days, now)
    await store.expire([Slot(brand_id=brand_id, board=board, period=period, scope=s) for s in scopes], seconds)
    log.info("closed %s/%s: %s standings archived", board.key, state.period, count)
    return True


async def _reward(
    session: AsyncSession,
    *,
    brand: Brand,
    board: BoardDef,
    period: str,
    scope: str,
    placed: list[Placed],
    now: datetime,
    grant_badge: BadgeGranter | None,
) -> None:
    """Pay the board's rewards to the ranks they name (inside the closing transaction)."""
    if not board.rewards:
        return
    where = f" ({scope})" if scope else ""
    for standing in placed:
        for reward in board.rewards:
            if not reward.from_rank <= standing.rank <= reward.to_rank:
                continue
            reason = f"{board.title}{where} {period}: rank {standing.rank}"
            if reward.points:
                await post_entry(
                    session,
                    brand_id=brand.id,
                    member_id=MemberId(standing.member_id),
                    points=reward.points,
                    source="board",
                    key=board.key,
                    reason=reason,
                    occurred_at=now,
                    tz=brand.tz,
                    now=now,
                )
            if reward.badge:
                if grant_badge is None:
                    log.warning(
                        "board %s rewards badge %r but no badges service is registered", board.key, reward.badge
                    )
                    continue
                await grant_badge(
                    session,
                    brand=brand,
                    member_id=MemberId(standing.member_id),
                    badge_key=reward.badge,
                    reason=reason,
                    source="board",
                    source_ref=f"{board.key}:{period}:{scope}",
                    now=now,
                )
