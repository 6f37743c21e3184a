"""SQL side of the archive: a closed period's final standings, per scope value.

Every function takes the session of the caller's transaction as its first argument; none commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, func, select

from engine.db import chunks, insert_for, one_of
from leaderboards.models import Placed
from leaderboards.orm import BoardArchiveRow

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


async def write_archive(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    board_id: int,
    period: str,
    scope: str,
    placed: Sequence[Placed],
    reached: dict[int, datetime],
) -> None:
    """Store a closed period's final standings of one scope value."""
    values = [
        {
            "brand_id": brand_id,
            "board_id": board_id,
            "period": period,
            "scope": scope,
            "member_id": p.member_id,
            "position": p.position,
            "rank": p.rank,
            "units": p.units,
            "reached_at": reached[p.member_id],
        }
        for p in placed
    ]
    insert = insert_for(session)
    for chunk in chunks(values):
        await session.execute(insert(BoardArchiveRow).values(chunk))


async def archive_count(session: AsyncSession, *, board_id: int, period: str, scope: str) -> int:
    """How many standings a closed period holds for one scope value."""
    total = await session.scalar(
        select(func.count()).where(
            BoardArchiveRow.board_id == board_id, BoardArchiveRow.period == period, BoardArchiveRow.scope == scope
        )
    )
    return int(total or 0)


def _placed(row: BoardArchiveRow) -> Placed:
    return Placed(member_id=row.member_id, position=row.position, rank=row.rank, units=int(row.units))


async def archive_range(
    session: AsyncSession, *, board_id: int, period: str, scope: str, start: int, stop: int
) -> list[Placed]:
    """Archived standings with positions in ``[start, stop]``."""
    rows = await session.scalars(
        select(BoardArchiveRow)
        .where(
            BoardArchiveRow.board_id == board_id,
            BoardArchiveRow.period == period,
            BoardArchiveRow.scope == scope,
            BoardArchiveRow.position >= start,
            BoardArchiveRow.position <= stop,
        )
        .order_by(BoardArchiveRow.position)
    )
    return [_placed(r) for r in rows]


async def archive_members(
    session: AsyncSession, *, board_id: int, period: str, scope: str, member_ids: Sequence[int]
) -> dict[int, Placed]:
    """Archived standings of the given members."""
    if not member_ids:
        return {}
    rows = await session.scalars(
        select(BoardArchiveRow).where(
            BoardArchiveRow.board_id == board_id,
            BoardArchiveRow.period == period,
            BoardArchiveRow.scope == scope,
            one_of(session, BoardArchiveRow.member_id, sorted(set(member_ids)), BigInteger()),
        )
    )
    return {r.member_id: _placed(r) for r in rows}
