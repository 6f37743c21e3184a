"""SQL side of the board totals: one batched upsert per board mode, and the totals' reads.

Every function takes the session of the caller's transaction as its first argument; none commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import case, select

from engine.db import chunks, greatest, insert_for, least, on_postgres
from leaderboards.models import BoardDef, Total
from leaderboards.orm import BoardTotalRow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


def _set_clause(session: AsyncSession, stmt: Any, family: str) -> dict[str, Any]:
    excluded = stmt.excluded
    units, reached = BoardTotalRow.units, BoardTotalRow.reached_at
    later = greatest(session, reached, excluded.reached_at)
    if family == "increment":
        new_units: Any = units + excluded.units
        new_reached: Any = case((excluded.units != 0, later), else_=reached)
    elif family in ("best-desc", "best-asc"):
        improves = excluded.units > units if family == "best-desc" else excluded.units < units
        pick = greatest if family == "best-desc" else least
        new_units = pick(session, units, excluded.units)
        new_reached = case(
            (improves, excluded.reached_at),
            (excluded.units == units, least(session, reached, excluded.reached_at)),
            else_=reached,
        )
    else:  # latest
        new_units = case((excluded.reached_at >= reached, excluded.units), else_=units)
        new_reached = later
    return {"units": new_units, "reached_at": new_reached, "updated_at": excluded.updated_at}


def mode_family(board: BoardDef) -> str:
    """Which upsert a board's totals need: ``increment``, ``best-desc``, ``best-asc`` or ``latest``."""
    if board.mode == "best":
        return f"best-{board.order}"
    return board.mode


_PG_SET = {
    "increment": "units = t.units + excluded.units, reached_at = CASE WHEN excluded.units <> 0"
    " THEN greatest(t.reached_at, excluded.reached_at) ELSE t.reached_at END",
    "best-desc": "units = greatest(t.units, excluded.units), reached_at = CASE WHEN excluded.units > t.units"
    " THEN excluded.reached_at WHEN excluded.units = t.units THEN least(t.reached_at, excluded.reached_at)"
    " ELSE t.reached_at END",
    "best-asc": "units = least(t.units, excluded.units), reached_at = CASE WHEN excluded.units < t.units"
    " THEN excluded.reached_at WHEN excluded.units = t.units THEN least(t.reached_at, excluded.reached_at)"
    " ELSE t.reached_at END",
    "latest": "units = CASE WHEN excluded.reached_at >= t.reached_at THEN excluded.units ELSE t.units END,"
    " reached_at = greatest(t.reached_at, excluded.reached_at)",
}
"""Per mode family, what a contribution does to the stored row (the same as :func:`_set_clause`)."""

_PG_UPSERT = {
    family: "INSERT INTO leaderboard_totals AS t (brand_id, board_id, period, scope, member_id, units, reached_at,"
    " updated_at) SELECT $1, b, p, s, m, u, r, $2 FROM unnest($3::bigint[], $4::varchar[], $5::varchar[],"
    " $6::bigint[], $7::bigint[], $8::timestamptz[]) AS x(b, p, s, m, u, r)"
    f" ON CONFLICT (board_id, period, scope, member_id) DO UPDATE SET {assign}, updated_at = excluded.updated_at"
    " RETURNING board_id, period, scope, member_id, units, reached_at"
    for family, assign in _PG_SET.items()
}
"""PostgreSQL: the upsert over ``unnest`` of one array per column. Its text never changes with the number of
rows, so it is neither recompiled nor re-prepared per unit of work (a multi-row ``VALUES`` is, per size)."""

_PG_UPSERT_WITH_PEOPLE = {
    family: f"WITH up AS ({upsert}) SELECT up.board_id, up.period, up.scope, up.member_id, up.units, up.reached_at,"
    " m.external_id, m.display_name, m.attributes, p.opt_out, p.display, p.pseudonym FROM up"
    " LEFT JOIN members m ON m.id = up.member_id AND m.brand_id = $1"
    " LEFT JOIN leaderboard_preferences p ON p.member_id = up.member_id AND p.brand_id = $1"
    for family, upsert in _PG_UPSERT.items()
}
"""PostgreSQL: the upsert, returning with each total what the brand's directory shows of its member (their
columns and board preferences), as :func:`leaderboards.people_repo.member_infos` reads them: one round trip
instead of two. The members' rows are the statement's snapshot, as a statement of their own would read them."""


async def upsert_totals_with_people(
    session: AsyncSession, *, brand_id: BrandId, family: str, rows: Sequence[Total], now: datetime
) -> tuple[list[Total], dict[int, tuple[Any, ...]]]:
    """PostgreSQL: :func:`upsert_totals`, with each member's directory columns (see :data:`_PG_UPSERT_WITH_PEOPLE`).

    Returns the totals and, per member, ``(member id, external id, display name, attributes, opt-out,
    display, pseudonym)`` as :func:`leaderboards.people_repo.info_of` takes them.
    """
    if not rows:
        return [], {}
    connection = await session.connection()
    found = await connection.exec_driver_sql(_PG_UPSERT_WITH_PEOPLE[family], _pg_parameters(brand_id, rows, now))
    totals: list[Total] = []
    people: dict[int, tuple[Any, ...]] = {}
    for t in cast("list[tuple[Any, ...]]", found.all()):
        totals.append(Total(board_id=t[0], period=t[1], scope=t[2], member_id=t[3], units=int(t[4]), reached_at=t[5]))
        if t[6] is not None:  # the member's row (always there: the totals' foreign key)
            people[t[3]] = (t[3], *t[6:])
    return totals, people


def _pg_parameters(brand_id: BrandId, rows: Sequence[Total], now: datetime) -> tuple[Any, ...]:
    return (
        brand_id,
        now,
        [r.board_id for r in rows],
        [r.period for r in rows],
        [r.scope for r in rows],
        [r.member_id for r in rows],
        [r.units for r in rows],
        [r.reached_at for r in rows],
    )


async def upsert_totals(
    session: AsyncSession, *, brand_id: BrandId, family: str, rows: Sequence[Total], now: datetime
) -> list[Total]:
    """Fold contributions into the stored totals in one statement per chunk; returns the absolute results.

    ``rows`` hold, per (board, period, scope, member), the unit's already-merged contribution; the
    statement applies the board's mode against the stored row (sum, best or latest), so concurrent units
    of work on other members never read-modify-write a shared row. On PostgreSQL one statement over
    ``unnest`` whatever the number of rows.
    """
    if on_postgres(session):
        if not rows:
            return []
        connection = await session.connection()
        found = await connection.exec_driver_sql(_PG_UPSERT[family], _pg_parameters(brand_id, rows, now))
        return [
            Total(board_id=t[0], period=t[1], scope=t[2], member_id=t[3], units=int(t[4]), reached_at=t[5])
            for t in cast("list[tuple[Any, ...]]", found.all())
        ]
    results: list[Total] = []
    insert = insert_for(session)
    for chunk in chunks(rows):
        stmt = insert(BoardTotalRow).values(
            [
                {
                    "brand_id": brand_id,
                    "board_id": r.board_id,
                    "period": r.period,
                    "scope": r.scope,
                    "member_id": r.member_id,
                    "units": r.units,
                    "reached_at": r.reached_at,
                    "updated_at": now,
                }
                for r in chunk
            ]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["board_id", "period", "scope", "member_id"], set_=_set_clause(session, stmt, family)
        ).returning(
            BoardTotalRow.board_id,
            BoardTotalRow.period,
            BoardTotalRow.scope,
            BoardTotalRow.member_id,
            BoardTotalRow.units,
            BoardTotalRow.reached_at,
        )
        for board_id, period, scope, member_id, units, reached_at in await session.execute(stmt):
            results.append(
                Total(
                    board_id=board_id,
                    period=period,
                    scope=scope,
                    member_id=member_id,
                    units=int(units),
                    reached_at=reached_at,
                )
            )
    return results


async def totals_for(session: AsyncSession, *, board_id: int, period: str, scope: str | None = None) -> list[Total]:
    """Every total of a board's period (one scope value, or all of them when ``scope`` is ``None``)."""
    query = select(BoardTotalRow).where(BoardTotalRow.board_id == board_id, BoardTotalRow.period == period)
    if scope is not None:
        query = query.where(BoardTotalRow.scope == scope)
    return [_total(r) for r in await session.scalars(query)]


async def stream_totals(
    session: AsyncSession, *, board_id: int, period: str, chunk: int
) -> AsyncIterator[Sequence[tuple[int, str, int, datetime]]]:
    """Every total of a board's period as (member id, scope, units, reached at), ``chunk`` rows at a time.

    A server-side cursor (``yield_per``): a rebuild of a million members holds one chunk, never the period.
    """
    query = (
        select(BoardTotalRow.member_id, BoardTotalRow.scope, BoardTotalRow.units, BoardTotalRow.reached_at)
        .where(BoardTotalRow.board_id == board_id, BoardTotalRow.period == period)
        .execution_options(yield_per=chunk)
    )
    # On the session's connection, not the session: Core rows, without the ORM's per-row loading (which
    # cost about half of a rebuild's CPU).
    result = await (await session.connection()).stream(query)
    async for rows in result.partitions(chunk):
        yield [(r[0], r[1], int(r[2]), r[3]) for r in rows]


def _total(row: BoardTotalRow) -> Total:
    return Total(
        board_id=row.board_id,
        period=row.period,
        scope=row.scope,
        member_id=row.member_id,
        units=int(row.units),
        reached_at=row.reached_at,
    )


async def member_totals(session: AsyncSession, *, brand_id: BrandId, member_id: int) -> list[Total]:
    """Every total a member holds, on every board and period."""
    rows = await session.scalars(
        select(BoardTotalRow).where(BoardTotalRow.brand_id == brand_id, BoardTotalRow.member_id == member_id)
    )
    return [_total(r) for r in rows]
