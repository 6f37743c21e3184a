"""How members appear on the boards: display preferences, opt-outs, profile changes and erasure.

Each change is written to SQL first, then to the brand's directory (name, preference, external id) and the
standings in Redis, so what a read shows follows the member's choice at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import NotFound
from leaderboards import people_repo, ranking, repository, totals_repo
from leaderboards.models import PeriodRef, Preference
from leaderboards.slots import Slot, Write, listing
from leaderboards.store import BoardStore

if TYPE_CHECKING:
    from datetime import datetime

    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId, MemberId
    from engine.tenants import Brand


async def set_preference(
    db: Database, store: BoardStore, brand: Brand, external_id: str, preference: Preference, *, now: datetime
) -> Preference:
    """Store how a member appears, and add or remove them on the public boards accordingly.

    Raises:
        NotFound: no such member.
    """
    async with db.write() as session:
        ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
        if external_id not in ids:
            raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
        member_id = ids[external_id]
        await people_repo.save_preference(
            session,
            brand_id=brand.id,
            member_id=member_id,
            opt_out=preference.opt_out,
            display=preference.display,
            pseudonym=preference.pseudonym,
            now=now,
        )
        totals = await totals_repo.member_totals(session, brand_id=brand.id, member_id=member_id)
        boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand.id)}
        states = {
            (t.board_id, t.period): await repository.get_period(session, board_id=t.board_id, period=t.period)
            for t in totals
        }
        info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id]))[member_id]
    # The brand's directory changes with the preference (labels; none shown while opted out of a public board).
    listings = [listing(brand.id, info)] if any(t.board_id in boards for t in totals) else []
    writes: list[Write] = []
    for total in totals:
        board = boards.get(total.board_id)
        if board is None:
            continue
        state = states[(total.board_id, total.period)]
        if state is None or state.closed_at is not None:
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
    await store.apply(writes, listings=listings)
    return preference


async def refresh_member(db: Database, store: BoardStore, brand: Brand, member_id: MemberId) -> None:
    """Rewrite a member's entry in the brand's directory (after their name or attributes changed).

    Reads show the label kept in Redis; it is rewritten with every new total of the member, a
    preference change and a rebuild. A change of the member's profile alone reaches the boards
    through this (the engine calls it once the change is committed).
    """
    async with db.read() as session:
        totals = await totals_repo.member_totals(session, brand_id=brand.id, member_id=member_id)
        if not totals:
            return
        boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand.id)}
        info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id])).get(member_id)
    if info is None:
        return
    if any(t.board_id in boards for t in totals):
        await store.apply([], listings=[listing(brand.id, info)])


async def get_preference(db: Database, brand: Brand, external_id: str) -> Preference:
    """A member's display preference.

    Raises:
        NotFound: no such member.
    """
    async with db.read() as session:
        ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
        if external_id not in ids:
            raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
        info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[ids[external_id]]))[
            ids[external_id]
        ]
    return Preference(opt_out=info.opt_out, display=info.display, pseudonym=info.pseudonym)


async def erase_member(
    session: AsyncSession, redis: Redis, *, namespace: str, brand_id: BrandId, member_id: MemberId
) -> int:
    """Remove a member from every board of the brand (totals, archives, preference, Redis); returns slots touched.

    Runs inside the caller's transaction (the SQL rows go with it); the Redis removal (standings and the
    brand's directory: external id and name) is immediate and absolute, so repeating it is harmless.
    Closed periods keep their totals, so their keys are covered.
    """
    store = BoardStore(redis, namespace=namespace)
    boards = {b.id: b for b in await repository.load_boards(session, brand_id=brand_id)}
    totals = await totals_repo.member_totals(session, brand_id=brand_id, member_id=member_id)
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
    await people_repo.erase_member_rows(session, brand_id=brand_id, member_id=member_id)
    await store.remove(slots, member_id)
    # The brand's directory, whatever boards they held totals on: nothing that names the member may remain.
    await store.forget_member(brand_id, member_id)
    return len(slots)
