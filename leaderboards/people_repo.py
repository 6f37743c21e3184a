"""SQL side of the members as boards show them: names, attributes, display preferences, opt-outs, erasure.

Every function takes the session of the caller's transaction as its first argument; none commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import BigInteger, String, and_, bindparam, delete, select

from engine.db import batches, chunks, insert_for, one_of, where_in_lists
from engine.orm import MemberRow
from leaderboards.models import MemberInfo
from leaderboards.orm import BoardArchiveRow, BoardPreferenceRow, BoardTotalRow
from leaderboards.slots import person_value

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


def _infos(brand_id: Any) -> Any:
    """What :func:`info_of` takes of a brand's members: their columns with their board preferences (outer join)."""
    return (
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
        .where(MemberRow.brand_id == brand_id)
    )


_INFOS = where_in_lists(_infos(bindparam("brand_id")), (MemberRow.id, "member_ids", BigInteger()))


async def member_infos(session: AsyncSession, *, brand_id: BrandId, member_ids: Sequence[int]) -> dict[int, MemberInfo]:
    """Names, external ids, attributes and display preferences of the given members (the hot path's look-up)."""
    found: dict[int, MemberInfo] = {}
    statement = _INFOS.of(session)
    for chunk in batches(session, sorted(set(member_ids))):
        for row in await session.execute(statement, {"brand_id": brand_id, "member_ids": chunk}):
            info = info_of(*row)
            found[info.member_id] = info
    return found


def info_of(
    member_id: int, external_id: str, name: str | None, attributes: Any, opt_out: Any, display: Any, pseudonym: Any
) -> MemberInfo:
    """A member's directory columns, as :func:`member_infos` and the totals' upsert read them."""
    if isinstance(attributes, str | bytes):  # a raw driver row: JSON as sent
        attributes = msgspec.json.decode(attributes)
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
        _infos(brand_id).join(holders, holders.c.member_id == MemberRow.id).order_by(MemberRow.id)
    )
    return [info_of(*row) for row in rows]


async def stream_directory(
    session: AsyncSession, *, brand_id: BrandId, chunk: int, board_id: int | None = None
) -> AsyncIterator[list[tuple[int, str, bytes]]]:
    """Every member holding a total on one of the brand's boards (or on ``board_id``), ``chunk`` at a time.

    As the brand's directory keeps them: (member id, external id, encoded value), built straight from the
    rows (a rebuild streams a million of them); a server-side cursor (``yield_per``).
    """
    holders = select(BoardTotalRow.member_id).where(
        BoardTotalRow.board_id == board_id if board_id is not None else BoardTotalRow.brand_id == brand_id
    )
    query = (
        select(
            MemberRow.id,
            MemberRow.external_id,
            MemberRow.display_name,
            BoardPreferenceRow.opt_out,
            BoardPreferenceRow.display,
            BoardPreferenceRow.pseudonym,
        )
        .outerjoin(
            BoardPreferenceRow,
            and_(BoardPreferenceRow.member_id == MemberRow.id, BoardPreferenceRow.brand_id == brand_id),
        )
        .where(MemberRow.brand_id == brand_id, MemberRow.id.in_(holders))
        .execution_options(yield_per=chunk)
    )
    result = await (await session.connection()).stream(query)  # Core rows: no ORM loading per row
    async for rows in result.partitions(chunk):
        yield [(m, e, person_value(e, n or "", d or "", p or "", bool(o))) for m, e, n, o, d, p in rows]


async def member_ids_by_external(
    session: AsyncSession, *, brand_id: BrandId, external_ids: Sequence[str]
) -> dict[str, int]:
    """The internal ids of the brand's members with these external ids (unknown ones are left out)."""
    if not external_ids:
        return {}
    rows = await session.execute(
        select(MemberRow.external_id, MemberRow.id).where(
            MemberRow.brand_id == brand_id, one_of(session, MemberRow.external_id, sorted(set(external_ids)), String())
        )
    )
    return {external_id: member_id for external_id, member_id in rows}


async def opted_out(session: AsyncSession, *, brand_id: BrandId, member_ids: Iterable[int]) -> set[int]:
    """Which of these members left the public boards."""
    ids = sorted(set(member_ids))
    if not ids:
        return set()
    found: set[int] = set()
    for chunk in chunks(ids):
        rows = await session.scalars(
            select(BoardPreferenceRow.member_id).where(
                BoardPreferenceRow.brand_id == brand_id,
                BoardPreferenceRow.opt_out.is_(True),
                one_of(session, BoardPreferenceRow.member_id, chunk, BigInteger()),
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
    insert = insert_for(session)
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
