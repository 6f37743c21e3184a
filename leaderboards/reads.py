"""Turning what a read found into the API's page, and the reads that go to SQL.

A live period is read from Redis (:meth:`leaderboards.store.BoardStore.read`); a closed period from its
archive, and any period from the SQL totals while Redis is being rebuilt. All three give a
:class:`~leaderboards.store.Snapshot`, which :class:`View` turns into the same :class:`BoardPage`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from engine.errors import NotFound
from engine.ids import BrandId
from leaderboards import archive_repo, people_repo, ranking, totals_repo
from leaderboards.models import (
    BoardDef,
    BoardPage,
    BoardSummary,
    Entry,
    MemberInfo,
    MemberStanding,
    PeriodOut,
    PeriodRef,
    Placed,
)
from leaderboards.slots import Snapshot

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.tenants import Brand
    from leaderboards.slots import Slot


class View:
    """What one read asked for; turns a snapshot into the :class:`BoardPage` the API answers."""

    __slots__ = (
        "around",
        "board",
        "brand",
        "current",
        "limit",
        "members",
        "offset",
        "period",
        "public",
        "scope",
        "summary",
    )

    def __init__(
        self,
        *,
        brand: Brand,
        board: BoardDef,
        summary: BoardSummary,
        period: PeriodRef,
        current: bool,
        scope: str,
        offset: int,
        limit: int,
        around: str | None,
        members: Sequence[str],
        public: bool,
    ) -> None:
        self.brand = brand
        self.board = board
        self.summary = summary
        self.period = period
        self.current = current
        self.scope = scope
        self.offset = offset
        self.limit = limit
        self.around = around
        self.members = members
        self.public = public

    def page(
        self,
        snap: Snapshot,
        show: Callable[[int], tuple[str | None, str]],
        *,
        me_id: int | None,
        friends: Mapping[str, Placed],
        source: Literal["redis", "archive", "sql"],
        hide: set[int] | frozenset[int] = frozenset(),
    ) -> BoardPage:
        """The API's answer; ``show`` gives a member's external id and label."""
        board, public, total = self.board, self.public, snap.total
        scale = board.scale if board.decimals else 0

        def entry(placed: Placed) -> Entry:
            external_id, label = show(placed.member_id)
            return Entry(
                rank=placed.rank,
                score=placed.units / scale if scale else float(placed.units),
                label=label,
                member=None if public else external_id,
                me=placed.member_id == me_id,
            )

        def standing(external_id: str, placed: Placed | None) -> MemberStanding:
            if placed is None:
                return MemberStanding(member=external_id, rank=None, score=None, percentile=None)
            return MemberStanding(
                member=external_id,
                rank=placed.rank,
                score=ranking.display_score(board, placed.units),
                percentile=ranking.percentile(placed.rank, total),
                label=show(placed.member_id)[1],
            )

        ref = self.period
        return BoardPage(
            board=self.summary,
            period=PeriodOut(
                id=ref.id,
                starts_at=ref.starts_at,
                ends_at=ref.ends_at,
                current=self.current,
                closed=source == "archive",
            ),
            scope=self.scope,
            total=total,
            offset=self.offset,
            limit=self.limit,
            entries=[entry(p) for p in snap.page if p.member_id not in hide],
            me=standing(self.around, snap.me) if self.around else None,
            around=[entry(p) for p in snap.around if p.member_id not in hide] if self.around else None,
            members=[standing(m, friends.get(m)) for m in self.members] if self.members else None,
            source=source,
        )


def label_of(brand: Brand, board: BoardDef, member_id: int, info: MemberInfo | None) -> str:
    """The label ``board`` shows for a member read from SQL (a pseudonym for an unknown one)."""
    if info is None:
        return ranking.pseudonym_for(brand.id, member_id)
    return ranking.label(
        policy=board.display,
        choice=info.display,
        display_name=info.display_name,
        pseudonym=info.pseudonym,
        brand_id=brand.id,
        member_id=member_id,
    )


async def member_id_of(db: Database, brand: Brand, external_id: str) -> int:
    """The member's id from SQL.

    Raises:
        NotFound: the brand has no such member.
    """
    async with db.read() as session:
        ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=[external_id])
    if external_id not in ids:
        raise NotFound(f"no member {external_id!r} in this brand", field="around")
    return ids[external_id]


async def scope_of_member(db: Database, brand: Brand, board: BoardDef, external_id: str) -> str:
    """The scope value of the member a scoped board is read around (from their attributes in SQL).

    Raises:
        NotFound: the brand has no such member.
    """
    found_id = await member_id_of(db, brand, external_id)
    async with db.read() as session:
        info = (await people_repo.member_infos(session, brand_id=brand.id, member_ids=[found_id])).get(found_id)
    return ranking.scope_of(board, info.attributes if info else {}) or ""


async def read_sql(db: Database, view: View, slot: Slot, *, k: int, source: Literal["archive", "sql"]) -> BoardPage:
    """The page from SQL: a closed period's archive, or the totals while Redis is being rebuilt."""
    brand = view.brand
    async with db.read() as session:
        wanted = [*([view.around] if view.around else []), *view.members]
        ids = await people_repo.member_ids_by_external(session, brand_id=brand.id, external_ids=wanted)
        if view.around and view.around not in ids:
            raise NotFound(f"no member {view.around!r} in this brand", field="around")
        me_id = ids.get(view.around) if view.around else None
        friend_ids = [ids[m] for m in view.members if m in ids]
        snapshot = archive_snapshot if source == "archive" else sql_snapshot
        snap = await snapshot(session, slot, offset=view.offset, limit=view.limit, me=me_id, k=k, friends=friend_ids)
        shown = [p.member_id for p in [*snap.page, *snap.around, *snap.friends.values()]]
        if snap.me is not None:
            shown.append(snap.me.member_id)
        infos = await people_repo.member_infos(session, brand_id=brand.id, member_ids=shown)
    # Archived ranks are history: a member who opted out since is simply not shown.
    hide = (
        {m for m, i in infos.items() if i.opt_out}
        if view.board.visibility == "public" and source == "archive"
        else set()
    )

    def show(member_id: int) -> tuple[str | None, str]:
        info = infos.get(member_id)
        return (None if info is None else info.external_id), label_of(brand, view.board, member_id, info)

    friends = {m: snap.friends[ids[m]] for m in view.members if m in ids and ids[m] in snap.friends}
    return view.page(snap, show, me_id=me_id, friends=friends, source=source, hide=hide)


async def archive_snapshot(
    session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
) -> Snapshot:
    """The answer from a closed period's archive."""
    board_id, period, scope = slot.board.id, slot.period.id, slot.scope
    total = await archive_repo.archive_count(session, board_id=board_id, period=period, scope=scope)
    snap = Snapshot(ready=True, total=total)
    snap.page = await archive_repo.archive_range(
        session, board_id=board_id, period=period, scope=scope, start=offset, stop=offset + limit - 1
    )
    wanted = ([me] if me is not None else []) + friends
    found = await archive_repo.archive_members(
        session, board_id=board_id, period=period, scope=scope, member_ids=wanted
    )
    snap.me = found.get(me) if me is not None else None
    snap.friends = {m: found[m] for m in friends if m in found}
    if snap.me is not None and k > 0:
        start, stop = ranking.around_bounds(snap.me.position, k, total)
        snap.around = await archive_repo.archive_range(
            session, board_id=board_id, period=period, scope=scope, start=start, stop=stop
        )
    return snap


async def sql_snapshot(
    session: AsyncSession, slot: Slot, *, offset: int, limit: int, me: int | None, k: int, friends: list[int]
) -> Snapshot:
    """The same answer computed from the SQL totals (used while Redis is being rebuilt)."""
    board = slot.board
    totals = await totals_repo.totals_for(session, board_id=board.id, period=slot.period.id, scope=slot.scope)
    hidden = await people_repo.opted_out(
        session, brand_id=BrandId(slot.brand_id), member_ids={t.member_id for t in totals}
    )
    scored = [
        (t.member_id, ranking.redis_score(board, slot.period, t.units, t.reached_at))
        for t in totals
        if ranking.is_listed(board, units=t.units, member_id=t.member_id, hidden=hidden)
    ]
    placed = ranking.place(board, slot.period, scored)
    by_member = {p.member_id: p for p in placed}
    snap = Snapshot(ready=False, total=len(placed), page=placed[offset : offset + limit])
    snap.me = by_member.get(me) if me is not None else None
    snap.friends = {m: by_member[m] for m in friends if m in by_member}
    if snap.me is not None and k > 0:
        start, stop = ranking.around_bounds(snap.me.position, k, len(placed))
        snap.around = placed[start : stop + 1]
    return snap
