"""SQL side of the leaderboards: definitions, totals (batched upserts), periods, archives, preferences.

Every function takes the session of the caller's transaction as its first argument; none commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy import BigInteger, String, and_, any_, bindparam, case, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from engine.db import on_postgres
from engine.errors import NotFound
from engine.orm import MemberRow
from engine.tenants import bump_config_version, config_version
from leaderboards.config import build_board
from leaderboards.models import BoardDef, BoardSpec, MemberInfo, PeriodState, Placed, Total
from leaderboards.orm import BoardArchiveRow, BoardPeriodRow, BoardPreferenceRow, BoardRow, BoardTotalRow

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

CHUNK = 500
SaveOutcome = Literal["created", "updated", "unchanged"]


def _insert(session: AsyncSession) -> Any:
    return pg_insert if on_postgres(session) else sqlite_insert


def _one_of(session: AsyncSession, column: Any, values: Sequence[Any], item: Any) -> Any:
    """``column IN values``; on PostgreSQL as ``= ANY(array)`` so the statement text (and its plan) is reused."""
    if on_postgres(session):
        return column == any_(bindparam(None, value=list(values), type_=ARRAY(item)))
    return column.in_(list(values))


def _greatest(session: AsyncSession, a: Any, b: Any) -> Any:
    return func.greatest(a, b) if on_postgres(session) else func.max(a, b)


def _least(session: AsyncSession, a: Any, b: Any) -> Any:
    return func.least(a, b) if on_postgres(session) else func.min(a, b)


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


class BoardCache:
    """Per-brand board definitions, reloaded when the brand's config version moves."""

    def __init__(self) -> None:
        self._boards: dict[BrandId, tuple[int, tuple[BoardDef, ...]]] = {}

    async def boards(self, session: AsyncSession, brand_id: BrandId) -> tuple[BoardDef, ...]:
        """The brand's boards as of this transaction."""
        version = await config_version(session, brand_id)
        hit = self._boards.get(brand_id)
        if hit is not None and hit[0] == version:
            return hit[1]
        boards = await load_boards(session, brand_id=brand_id)
        self._boards[brand_id] = (version, boards)
        return boards


# --- totals --------------------------------------------------------------------------------------------


def _set_clause(session: AsyncSession, stmt: Any, family: str) -> dict[str, Any]:
    excluded = stmt.excluded
    units, reached = BoardTotalRow.units, BoardTotalRow.reached_at
    later = _greatest(session, reached, excluded.reached_at)
    if family == "increment":
        new_units: Any = units + excluded.units
        new_reached: Any = case((excluded.units != 0, later), else_=reached)
    elif family in ("best-desc", "best-asc"):
        improves = excluded.units > units if family == "best-desc" else excluded.units < units
        pick = _greatest if family == "best-desc" else _least
        new_units = pick(session, units, excluded.units)
        new_reached = case(
            (improves, excluded.reached_at),
            (excluded.units == units, _least(session, reached, excluded.reached_at)),
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


async def upsert_totals(
    session: AsyncSession, *, brand_id: BrandId, family: str, rows: Sequence[Total], now: datetime
) -> list[Total]:
    """Fold contributions into the stored totals in one statement per chunk; returns the absolute results.

    ``rows`` hold, per (board, period, scope, member), the unit's already-merged contribution; the
    statement applies the board's mode against the stored row (sum, best or latest), so concurrent units
    of work on other members never read-modify-write a shared row.
    """
    results: list[Total] = []
    insert = _insert(session)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
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


def _total(row: BoardTotalRow) -> Total:
    return Total(
        board_id=row.board_id,
        period=row.period,
        scope=row.scope,
        member_id=row.member_id,
        units=int(row.units),
        reached_at=row.reached_at,
    )


async def totals_changed_since(session: AsyncSession, *, brand_id: BrandId, since: datetime) -> list[Total]:
    """Totals written at or after ``since`` (to replay writes that raced a rebuild)."""
    rows = await session.scalars(
        select(BoardTotalRow).where(BoardTotalRow.brand_id == brand_id, BoardTotalRow.updated_at >= since)
    )
    return [_total(r) for r in rows]


async def member_totals(session: AsyncSession, *, brand_id: BrandId, member_id: int) -> list[Total]:
    """Every total a member holds, on every board and period."""
    rows = await session.scalars(
        select(BoardTotalRow).where(BoardTotalRow.brand_id == brand_id, BoardTotalRow.member_id == member_id)
    )
    return [_total(r) for r in rows]


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
    insert = _insert(session)
    for start in range(0, len(values), CHUNK):
        stmt = insert(BoardPeriodRow).values(values[start : start + CHUNK])
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


# --- archives ------------------------------------------------------------------------------------------


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
    insert = _insert(session)
    for start in range(0, len(values), CHUNK):
        await session.execute(insert(BoardArchiveRow).values(values[start : start + CHUNK]))


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
            BoardArchiveRow.member_id.in_(list(member_ids)),
        )
    )
    return {r.member_id: _placed(r) for r in rows}


# --- members and preferences ---------------------------------------------------------------------------


async def member_infos(session: AsyncSession, *, brand_id: BrandId, member_ids: Sequence[int]) -> dict[int, MemberInfo]:
    """Names, external ids, attributes and display preferences of the given members."""
    found: dict[int, MemberInfo] = {}
    unique = sorted(set(member_ids))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        rows = await session.execute(
            select(
                MemberRow.id,
                MemberRow.external_id,
                MemberRow.display_name,
                MemberRow.attributes,
                BoardPreferenceRow.opt_out,
                BoardPreferenceRow.display,
                BoardPreferenceRow.pseudonym,
            )
            .outerjoin(
                BoardPreferenceRow,
                and_(BoardPreferenceRow.member_id == MemberRow.id, BoardPreferenceRow.brand_id == brand_id),
            )
            .where(MemberRow.brand_id == brand_id, _one_of(session, MemberRow.id, chunk, BigInteger()))
        )
        for row in rows:
            info = _info(*row)
            found[info.member_id] = info
    return found


def _info(
    member_id: int, external_id: str, name: str | None, attributes: Any, opt_out: Any, display: Any, pseudonym: Any
) -> MemberInfo:
    return MemberInfo(
        member_id=member_id,
        external_id=external_id,
        display_name=name or "",
        attributes=dict(attributes or {}),
        opt_out=bool(opt_out),
        display=display or "",
        pseudonym=pseudonym or "",
    )


async def board_members(session: AsyncSession, *, brand_id: BrandId, board_id: int) -> list[MemberInfo]:
    """Every member holding a total on the board (any period or scope), with what boards show of them."""
    holders = select(BoardTotalRow.member_id).where(BoardTotalRow.board_id == board_id).distinct().subquery("holders")
    rows = await session.execute(
        select(
            MemberRow.id,
            MemberRow.external_id,
            MemberRow.display_name,
            MemberRow.attributes,
            BoardPreferenceRow.opt_out,
            BoardPreferenceRow.display,
            BoardPreferenceRow.pseudonym,
        )
        .join(holders, holders.c.member_id == MemberRow.id)
        .outerjoin(
            BoardPreferenceRow,
            and_(BoardPreferenceRow.member_id == MemberRow.id, BoardPreferenceRow.brand_id == brand_id),
        )
        .where(MemberRow.brand_id == brand_id)
        .order_by(MemberRow.id)
    )
    return [_info(*row) for row in rows]


async def member_ids_by_external(
    session: AsyncSession, *, brand_id: BrandId, external_ids: Sequence[str]
) -> dict[str, int]:
    """The internal ids of the brand's members with these external ids (unknown ones are left out)."""
    if not external_ids:
        return {}
    rows = await session.execute(
        select(MemberRow.external_id, MemberRow.id).where(
            MemberRow.brand_id == brand_id, _one_of(session, MemberRow.external_id, sorted(set(external_ids)), String())
        )
    )
    return {external_id: member_id for external_id, member_id in rows}


async def opted_out(session: AsyncSession, *, brand_id: BrandId, member_ids: Iterable[int]) -> set[int]:
    """Which of these members left the public boards."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(BoardPreferenceRow.member_id).where(
                BoardPreferenceRow.brand_id == brand_id,
                BoardPreferenceRow.opt_out.is_(True),
                BoardPreferenceRow.member_id.in_(ids[start : start + CHUNK]),
            )
        )
        found.update(rows)
    return found


async def all_opted_out(session: AsyncSession, *, brand_id: BrandId) -> set[int]:
    """Every member of the brand who left the public boards."""
    rows = await session.scalars(
        select(BoardPreferenceRow.member_id).where(
            BoardPreferenceRow.brand_id == brand_id, BoardPreferenceRow.opt_out.is_(True)
        )
    )
    return set(rows)


async def save_preference(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: int,
    opt_out: bool,
    display: str,
    pseudonym: str,
    now: datetime,
) -> None:
    """Create or replace a member's display preference."""
    insert = _insert(session)
    stmt = insert(BoardPreferenceRow).values(
        brand_id=brand_id, member_id=member_id, opt_out=opt_out, display=display, pseudonym=pseudonym, updated_at=now
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["brand_id", "member_id"],
            set_={
                "opt_out": stmt.excluded.opt_out,
                "display": stmt.excluded.display,
                "pseudonym": stmt.excluded.pseudonym,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def erase_member_rows(session: AsyncSession, *, brand_id: BrandId, member_id: int) -> None:
    """Delete a member's totals, archived standings and preference on every board."""
    for table in (BoardTotalRow, BoardArchiveRow, BoardPreferenceRow):
        await session.execute(delete(table).where(table.brand_id == brand_id, table.member_id == member_id))
