"""SQL side of the board definitions and their periods (open, due, claimed closed).

Every function takes the session of the caller's transaction as its first argument; none commits. The
other tables have their own modules: :mod:`leaderboards.totals_repo`, :mod:`leaderboards.archive_repo`,
:mod:`leaderboards.people_repo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy import delete, select, tuple_, update

from engine.db import chunks, insert_for, on_postgres
from engine.errors import NotFound
from engine.tenants import bump_config_version
from leaderboards.config import build_board
from leaderboards.models import BoardDef, BoardSpec, PeriodState
from leaderboards.orm import BoardArchiveRow, BoardPeriodRow, BoardRow, BoardTotalRow

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

SaveOutcome = Literal["created", "updated", "unchanged"]


# --- definitions ---------------------------------------------------------------------------------------


def _to_board(row_id: int, spec: dict[str, Any]) -> BoardDef:
    return build_board(msgspec.convert(spec, BoardSpec), board_id=row_id)


async def load_boards(session: AsyncSession, *, brand_id: BrandId) -> tuple[BoardDef, ...]:
    """Every board of the brand, by key."""
    rows = await session.execute(
        select(BoardRow.id, BoardRow.spec).where(BoardRow.brand_id == brand_id).order_by(BoardRow.key)
    )
    return tuple(_to_board(row_id, spec) for row_id, spec in rows)


async def get_board(session: AsyncSession, *, brand_id: BrandId, key: str) -> BoardDef:
    """The brand's board ``key``.

    Raises:
        NotFound: no such board.
    """
    row = await session.execute(
        select(BoardRow.id, BoardRow.spec).where(BoardRow.brand_id == brand_id, BoardRow.key == key)
    )
    found = row.first()
    if found is None:
        raise NotFound(f"no leaderboard {key!r}", field="key")
    return _to_board(found[0], found[1])


async def save_board(session: AsyncSession, *, brand_id: BrandId, spec: BoardSpec, now: datetime) -> SaveOutcome:
    """Create or replace a board definition (validated first); the caller bumps the config version."""
    build_board(spec)
    plain = msgspec.to_builtins(spec)
    row = await session.scalar(select(BoardRow).where(BoardRow.brand_id == brand_id, BoardRow.key == spec.key))
    if row is None:
        session.add(BoardRow(brand_id=brand_id, key=spec.key, spec=plain, created_at=now, updated_at=now))
        await session.flush()
        return "created"
    if row.spec == plain:
        return "unchanged"
    row.spec = plain
    row.updated_at = now
    await session.flush()
    return "updated"


async def put_board(
    session: AsyncSession, *, brand_id: BrandId, spec: BoardSpec, now: datetime
) -> tuple[BoardDef, SaveOutcome]:
    """Validate a board spec and store it, bumping the brand's config version on a change.

    Raises:
        DefinitionError: the definition is invalid; nothing is stored.
    """
    board = build_board(spec)
    outcome = await save_board(session, brand_id=brand_id, spec=spec, now=now)
    if outcome != "unchanged":
        await bump_config_version(session, brand_id)
    stored = await get_board(session, brand_id=brand_id, key=board.key)
    return stored, outcome


async def delete_board(session: AsyncSession, *, brand_id: BrandId, key: str) -> BoardDef:
    """Remove a board with its totals, periods and archives; returns what was removed.

    Raises:
        NotFound: no such board.
    """
    board = await get_board(session, brand_id=brand_id, key=key)
    for table in (BoardArchiveRow, BoardTotalRow, BoardPeriodRow):
        await session.execute(delete(table).where(table.board_id == board.id))
    await session.execute(delete(BoardRow).where(BoardRow.id == board.id))
    await bump_config_version(session, brand_id)
    return board


# --- periods -------------------------------------------------------------------------------------------


async def ensure_periods(session: AsyncSession, *, brand_id: BrandId, periods: Iterable[PeriodState]) -> None:
    """Record the periods that now hold totals (existing rows are left alone)."""
    values = [
        {
            "brand_id": brand_id,
            "board_id": p.board_id,
            "period": p.period,
            "starts_at": p.starts_at,
            "ends_at": p.ends_at,
            "closed_at": None,
            "members": 0,
        }
        for p in periods
    ]
    if not values:
        return
    insert = insert_for(session)
    for chunk in chunks(values):
        stmt = insert(BoardPeriodRow).values(chunk)
        await session.execute(stmt.on_conflict_do_nothing(index_elements=["board_id", "period"]))


async def closed_among(session: AsyncSession, *, pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (board id, period) pairs are closed; on PostgreSQL the rows are share-locked so a close waits.

    The lock makes a late event and the close of its period serialise: either the event's totals are in
    the archive, or the event sees the period closed and leaves it alone.
    """
    if not pairs:
        return set()
    query = select(BoardPeriodRow.board_id, BoardPeriodRow.period, BoardPeriodRow.closed_at).where(
        tuple_(BoardPeriodRow.board_id, BoardPeriodRow.period).in_(sorted(pairs))
    )
    if on_postgres(session):
        query = query.with_for_update(read=True)
    rows = await session.execute(query)
    return {(board_id, period) for board_id, period, closed_at in rows if closed_at is not None}


def _period(row: BoardPeriodRow) -> PeriodState:
    return PeriodState(
        board_id=row.board_id,
        period=row.period,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        closed_at=row.closed_at,
        members=row.members,
    )


async def get_period(session: AsyncSession, *, board_id: int, period: str) -> PeriodState | None:
    """The stored state of one period of a board (``None`` when it never had totals)."""
    row = await session.scalar(
        select(BoardPeriodRow).where(BoardPeriodRow.board_id == board_id, BoardPeriodRow.period == period)
    )
    return _period(row) if row is not None else None


async def board_periods(session: AsyncSession, *, board_id: int) -> list[PeriodState]:
    """Every stored period of a board, oldest first."""
    rows = await session.scalars(
        select(BoardPeriodRow)
        .where(BoardPeriodRow.board_id == board_id)
        .order_by(BoardPeriodRow.starts_at, BoardPeriodRow.id)
    )
    return [_period(r) for r in rows]


async def due_periods(
    session: AsyncSession, *, now: datetime, brand_id: BrandId | None = None
) -> list[tuple[int, PeriodState]]:
    """Open periods that ended before ``now`` (grace not applied yet), with their brand id."""
    query = select(BoardPeriodRow).where(BoardPeriodRow.closed_at.is_(None), BoardPeriodRow.ends_at <= now)
    if brand_id is not None:
        query = query.where(BoardPeriodRow.brand_id == brand_id)
    rows = await session.scalars(query.order_by(BoardPeriodRow.ends_at, BoardPeriodRow.id))
    return [(r.brand_id, _period(r)) for r in rows]


async def claim_close(session: AsyncSession, *, board_id: int, period: str, now: datetime, members: int) -> bool:
    """Mark a period closed unless someone already did; exactly one caller ever gets ``True``."""
    result = await session.execute(
        update(BoardPeriodRow)
        .where(BoardPeriodRow.board_id == board_id, BoardPeriodRow.period == period, BoardPeriodRow.closed_at.is_(None))
        .values(closed_at=now, members=members)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1
