"""SQL of leagues: definitions, the period rows (lock and close claim), placements and divisions.

Every function takes the session of the caller's transaction; none commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import func, select, update

from engine.db import chunks, insert_for
from engine.errors import NotFound
from leagues.models import LeagueSpec
from leagues.orm import LeagueMemberRow, LeaguePeriodRow, LeaguePlacementRow, LeagueRow

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


@dataclass(frozen=True, slots=True)
class League:
    """A stored league: its row id, brand and definition."""

    id: int
    brand_id: int
    spec: LeagueSpec


@dataclass(frozen=True, slots=True)
class Seat:
    """A member's placement in a period."""

    member_id: int
    division: str
    cohort: int
    seq: int
    rank: int | None = None
    value: int | None = None
    zone: str | None = None


def _league(row: LeagueRow) -> League:
    return League(id=row.id, brand_id=row.brand_id, spec=msgspec.convert(row.spec, LeagueSpec))


async def load_leagues(session: AsyncSession, *, brand_id: BrandId | None = None) -> list[League]:
    """The leagues of one brand (or of every brand), by key."""
    query = select(LeagueRow).order_by(LeagueRow.brand_id, LeagueRow.key)
    if brand_id is not None:
        query = query.where(LeagueRow.brand_id == brand_id)
    return [_league(r) for r in await session.scalars(query)]


async def get_league(session: AsyncSession, *, brand_id: BrandId, key: str) -> League:
    """One league.

    Raises:
        NotFound: the brand has no league ``key``.
    """
    row = await session.scalar(select(LeagueRow).where(LeagueRow.brand_id == brand_id, LeagueRow.key == key))
    if row is None:
        raise NotFound(f"no league {key!r} in this brand", field="key")
    return _league(row)


async def save_league(session: AsyncSession, *, brand_id: BrandId, spec: LeagueSpec, now: datetime) -> str:
    """Create or replace a league's definition; returns ``created``, ``updated`` or ``unchanged``."""
    plain = msgspec.to_builtins(spec)
    row = await session.scalar(select(LeagueRow).where(LeagueRow.brand_id == brand_id, LeagueRow.key == spec.key))
    if row is None:
        session.add(LeagueRow(brand_id=brand_id, key=spec.key, spec=plain, updated_at=now))
        await session.flush()
        return "created"
    if row.spec == plain:
        return "unchanged"
    row.spec = plain
    row.updated_at = now
    return "updated"


async def ensure_period(session: AsyncSession, *, league: League, period: str, closes_at: datetime) -> None:
    """Record a league period (once; a second call changes nothing)."""
    stmt = insert_for(session)(LeaguePeriodRow).values(
        league_id=league.id, period=period, brand_id=league.brand_id, closes_at=closes_at, placed=0
    )
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["league_id", "period"]))


async def lock_open_period(session: AsyncSession, *, league_id: int, period: str) -> bool:
    """Take the period row's write lock while it is open; False when it is closed (or unknown).

    Placement and closing both start here, so they never interleave on one period: an ``UPDATE`` waits
    for a concurrent one and then re-checks ``closed_at IS NULL`` against the committed row.
    """
    result = await session.execute(
        update(LeaguePeriodRow)
        .where(
            LeaguePeriodRow.league_id == league_id,
            LeaguePeriodRow.period == period,
            LeaguePeriodRow.closed_at.is_(None),
        )
        .values(placed=LeaguePeriodRow.placed + 0)
    )
    return bool(getattr(result, "rowcount", 0))


async def claim_close(session: AsyncSession, *, league_id: int, period: str, now: datetime) -> bool:
    """Mark the period closed unless it already is; exactly one caller ever gets True."""
    result = await session.execute(
        update(LeaguePeriodRow)
        .where(
            LeaguePeriodRow.league_id == league_id,
            LeaguePeriodRow.period == period,
            LeaguePeriodRow.closed_at.is_(None),
        )
        .values(closed_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def open_periods(session: AsyncSession, *, league_id: int) -> list[tuple[str, datetime]]:
    """The league's periods not yet closed, ``(period, closes_at)``, earliest close first."""
    rows = await session.execute(
        select(LeaguePeriodRow.period, LeaguePeriodRow.closes_at)
        .where(LeaguePeriodRow.league_id == league_id, LeaguePeriodRow.closed_at.is_(None))
        .order_by(LeaguePeriodRow.closes_at)
    )
    return [(p, c) for p, c in rows]


async def seats(session: AsyncSession, *, league_id: int, period: str) -> list[Seat]:
    """Every placement of a period, in join order."""
    rows = await session.scalars(
        select(LeaguePlacementRow)
        .where(LeaguePlacementRow.league_id == league_id, LeaguePlacementRow.period == period)
        .order_by(LeaguePlacementRow.seq)
    )
    return [
        Seat(
            member_id=r.member_id,
            division=r.division,
            cohort=r.cohort,
            seq=r.seq,
            rank=r.final_rank,
            value=r.final_value,
            zone=r.zone,
        )
        for r in rows
    ]


async def seat_of(session: AsyncSession, *, league_id: int, member_id: int) -> tuple[str, Seat] | None:
    """A member's latest placement ``(period, seat)`` in the league, or None."""
    row = await session.scalar(
        select(LeaguePlacementRow)
        .where(LeaguePlacementRow.league_id == league_id, LeaguePlacementRow.member_id == member_id)
        .order_by(LeaguePlacementRow.joined_at.desc(), LeaguePlacementRow.period.desc())
        .limit(1)
    )
    if row is None:
        return None
    seat = Seat(
        member_id=row.member_id,
        division=row.division,
        cohort=row.cohort,
        seq=row.seq,
        rank=row.final_rank,
        value=row.final_value,
        zone=row.zone,
    )
    return row.period, seat


async def add_seats(session: AsyncSession, *, league: League, period: str, placed: list[Seat], now: datetime) -> None:
    """Insert new placements and count them on the period row (inside the period's lock)."""
    if not placed:
        return
    session.add_all(
        LeaguePlacementRow(
            league_id=league.id,
            period=period,
            member_id=s.member_id,
            brand_id=league.brand_id,
            division=s.division,
            cohort=s.cohort,
            seq=s.seq,
            joined_at=now,
        )
        for s in placed
    )
    await session.flush()
    await session.execute(
        update(LeaguePeriodRow)
        .where(LeaguePeriodRow.league_id == league.id, LeaguePeriodRow.period == period)
        .values(placed=LeaguePeriodRow.placed + len(placed))
    )


async def divisions_of(session: AsyncSession, *, league_id: int, member_ids: Iterable[int]) -> dict[int, str]:
    """The division each of these members plays in (members never placed are absent)."""
    wanted = set(member_ids)
    if not wanted:
        return {}
    found: dict[int, str] = {}
    for chunk in chunks(sorted(wanted)):
        rows = await session.execute(
            select(LeagueMemberRow.member_id, LeagueMemberRow.division).where(
                LeagueMemberRow.league_id == league_id, LeagueMemberRow.member_id.in_(chunk)
            )
        )
        found.update((m, d) for m, d in rows)
    return found


async def set_divisions(session: AsyncSession, *, league: League, divisions: dict[int, str], now: datetime) -> None:
    """Record each member's division for the next period (insert or update)."""
    insert = insert_for(session)
    for member_id, division in sorted(divisions.items()):
        stmt = insert(LeagueMemberRow).values(
            league_id=league.id, member_id=member_id, brand_id=league.brand_id, division=division, since=now
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["league_id", "member_id"],
                set_={"division": stmt.excluded.division, "since": stmt.excluded.since},
            )
        )


async def finish_seat(
    session: AsyncSession, *, league_id: int, period: str, member_id: int, rank: int, value: int, zone: str
) -> None:
    """Write a member's final rank, score and zone on their placement."""
    await session.execute(
        update(LeaguePlacementRow)
        .where(
            LeaguePlacementRow.league_id == league_id,
            LeaguePlacementRow.period == period,
            LeaguePlacementRow.member_id == member_id,
        )
        .values(final_rank=rank, final_value=value, zone=zone)
    )


async def placed_count(session: AsyncSession, *, league_id: int, period: str) -> int:
    """How many members a period placed."""
    count = await session.scalar(
        select(func.count())
        .select_from(LeaguePlacementRow)
        .where(LeaguePlacementRow.league_id == league_id, LeaguePlacementRow.period == period)
    )
    return int(count or 0)


async def member_seats(session: AsyncSession, *, brand_id: BrandId, member_id: int) -> list[dict[str, object]]:
    """Every placement of a member in the brand's leagues (their data export), oldest first."""
    rows = await session.execute(
        select(LeagueRow.key, LeaguePlacementRow)
        .join(LeagueRow, LeagueRow.id == LeaguePlacementRow.league_id)
        .where(LeaguePlacementRow.brand_id == brand_id, LeaguePlacementRow.member_id == member_id)
        .order_by(LeaguePlacementRow.joined_at, LeagueRow.key)
    )
    return [
        {
            "league": key,
            "period": seat.period,
            "division": seat.division,
            "cohort": seat.cohort,
            "joined_at": seat.joined_at.isoformat(),
            "rank": seat.final_rank,
            "zone": seat.zone,
        }
        for key, seat in rows
    ]
