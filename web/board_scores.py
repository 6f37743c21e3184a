"""The boards' period scores as leagues read them (``engine.grants.BoardScores``), from the SQL totals.

Leagues never import leaderboards (sibling domains); the composition root passes them this adapter.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from engine.errors import NotFound, ValidationError
from engine.grants import PeriodScores
from engine.tenants import Brand
from leaderboards import people_repo as board_people
from leaderboards import ranking as board_ranking
from leaderboards import repository as board_repository
from leaderboards import totals_repo as board_totals


async def board_scores(
    session: AsyncSession, *, brand: Brand, board_key: str, period: str | None, now: datetime
) -> PeriodScores | None:
    """The :class:`engine.grants.BoardScores` leagues read: a board period's listed totals from SQL.

    Only active, unscoped boards with calendar periods (daily, weekly, monthly) carry a league.
    """
    try:
        board = await board_repository.get_board(session, brand_id=brand.id, key=board_key)
        if not board.active or board.scope is not None or board.period in ("all_time", "window"):
            return None
        ref = (
            board_ranking.current_period(board, now, brand.tz)
            if period is None
            else board_ranking.period_from_id(board, period, brand.tz)
        )
    except (NotFound, ValidationError):
        return None
    assert ref.ends_at is not None  # calendar periods always end
    totals = await board_totals.totals_for(session, board_id=board.id, period=ref.id)
    hidden = await board_people.opted_out(session, brand_id=brand.id, member_ids={t.member_id for t in totals})
    return PeriodScores(
        period=ref.id,
        ends_at=ref.ends_at,
        closes_at=ref.ends_at + timedelta(minutes=board.grace_minutes),
        scores=[
            (t.member_id, board_ranking.signed(board, t.units), t.reached_at)
            for t in totals
            if board_ranking.is_listed(board, units=t.units, member_id=t.member_id, hidden=hidden)
        ],
        decimals=board.decimals,
        descending=board.order == "desc",
    )
