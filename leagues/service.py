"""The league rounds: place new scorers into cohorts, close ended periods exactly once; a member's view.

Placement policy (docs/leagues.md): each round reads the board's current period scores; every member who
scored and has no seat yet joins, in join order (who reached their score first, then member id), the open
cohort of their division (the last cohort while it has fewer than ``cohort_size`` members, else a new
one). A member who first scores mid-period therefore joins the cohort open at that moment. Placement into
a new period waits until the previous period is closed, so nobody is seated in a division a pending
promotion or relegation is about to change.

Closing: once the board period's end plus the board's grace has passed, one transaction locks the period
row, seats any scorer still unseated, claims the close (``UPDATE … WHERE closed_at IS NULL``; only one
worker's update matches), ranks every cohort, records zones and next divisions, and pays each division's
rewards through the points ledger. A second or concurrent run finds the period closed and does nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.ids import BrandId, MemberId
from engine.points import post_entry
from engine.tenants import get_brand_by_id
from leagues import models
from leagues import repository as repo
from leagues.repository import League, Seat

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.grants import BoardScores, PeriodScores
    from engine.tenants import Brand

log = logging.getLogger(__name__)

UNSCORED = -(2**62)
"""The value of a seated member the board no longer lists (opted out, below its minimum): ranked last."""


@dataclass
class RoundReport:
    """What one round did: periods closed (``<brand>/<league>/<period>``) and members seated."""

    closed: list[str] = field(default_factory=list)
    placed: int = 0


async def run_round(
    db: Database, *, scores: BoardScores, now: datetime, brand_id: BrandId | None = None
) -> RoundReport:
    """Close every due period of every active league, then seat the current period's new scorers."""
    async with db.read() as session:
        leagues = [lg for lg in await repo.load_leagues(session, brand_id=brand_id) if lg.spec.active]
    report = RoundReport()
    for league in leagues:
        async with db.read() as session:
            brand = await get_brand_by_id(session, BrandId(league.brand_id))
            due = [p for p, closes_at in await repo.open_periods(session, league_id=league.id) if closes_at <= now]
        for period in due:
            if await close_period(db, league=league, brand=brand, scores=scores, period=period, now=now):
                report.closed.append(f"{league.brand_id}/{league.spec.key}/{period}")
        report.placed += await place_current(db, league=league, brand=brand, scores=scores, now=now)
    return report


async def place_current(db: Database, *, league: League, brand: Brand, scores: BoardScores, now: datetime) -> int:
    """Seat the current period's scorers who have no seat yet; returns how many were seated."""
    async with db.write() as session:
        current = await scores(session, brand=brand, board_key=league.spec.board, period=None, now=now)
        if current is None:
            return 0
        earlier = [p for p, _ in await repo.open_periods(session, league_id=league.id) if p != current.period]
        if earlier:
            return 0  # the previous period is not closed yet: its moves decide the divisions
        await repo.ensure_period(session, league=league, period=current.period, closes_at=current.closes_at)
        if not await repo.lock_open_period(session, league_id=league.id, period=current.period):
            return 0
        return await _seat_newcomers(session, league=league, period=current, now=now)


async def _seat_newcomers(session: AsyncSession, *, league: League, period: PeriodScores, now: datetime) -> int:
    """Seat the period's scorers without a seat (the caller holds the period row's lock)."""
    existing = await repo.seats(session, league_id=league.id, period=period.period)
    seated = {s.member_id for s in existing}
    newcomers = models.join_order(
        [models.Score(member_id=m, value=v, reached_at=r) for m, v, r in period.scores if m not in seated]
    )
    if not newcomers:
        return 0
    names = [d.key for d in league.spec.divisions]
    known = await repo.divisions_of(session, league_id=league.id, member_ids=[s.member_id for s in newcomers])
    sizes: dict[str, dict[int, int]] = {}
    for seat in existing:
        by_cohort = sizes.setdefault(seat.division, {})
        by_cohort[seat.cohort] = by_cohort.get(seat.cohort, 0) + 1
    placed: list[Seat] = []
    for score in newcomers:
        division = known.get(score.member_id, names[0])
        if division not in names:
            division = names[0]
        (cohort,) = models.place_newcomers(sizes.setdefault(division, {}), 1, league.spec.cohort_size)
        seq = len(existing) + len(placed) + 1
        placed.append(Seat(member_id=score.member_id, division=division, cohort=cohort, seq=seq))
    await repo.add_seats(session, league=league, period=period.period, placed=placed, now=now)
    return len(placed)


def cohorts_of(seats: list[Seat]) -> dict[tuple[str, int], list[Seat]]:
    """Seats grouped by ``(division, cohort)``."""
    grouped: dict[tuple[str, int], list[Seat]] = {}
    for seat in seats:
        grouped.setdefault((seat.division, seat.cohort), []).append(seat)
    return grouped


def rank_cohort(league: League, division: str, members: list[Seat], values: dict[int, int]) -> list[models.Standing]:
    """A cohort's standings with its zones (the league's top and bottom divisions have one zone only)."""
    names = [d.key for d in league.spec.divisions]
    return models.standings(
        {s.member_id: values.get(s.member_id, UNSCORED) for s in members},
        promote=league.spec.promote,
        relegate=league.spec.relegate,
        top=division == names[-1],
        bottom=division == names[0] or division not in names,
    )


async def close_period(
    db: Database, *, league: League, brand: Brand, scores: BoardScores, period: str, now: datetime
) -> bool:
    """Close one league period unless it already is; returns whether this call closed it."""
    async with db.write() as session:
        if not await repo.lock_open_period(session, league_id=league.id, period=period):
            return False
        final = await scores(session, brand=brand, board_key=league.spec.board, period=period, now=now)
        if final is not None:
            await _seat_newcomers(session, league=league, period=final, now=now)
        if not await repo.claim_close(session, league_id=league.id, period=period, now=now):
            return False
        values = {m: v for m, v, _ in final.scores} if final is not None else {}
        seats = await repo.seats(session, league_id=league.id, period=period)
        names = [d.key for d in league.spec.divisions]
        divisions = {d.key: d for d in league.spec.divisions}
        moves: dict[int, str] = {}
        for (division, _cohort), members in sorted(cohorts_of(seats).items()):
            table = rank_cohort(league, division, members, values)
            for standing in table:
                zone: models.Zone = standing.zone if final is not None else "stay"
                await repo.finish_seat(
                    session,
                    league_id=league.id,
                    period=period,
                    member_id=standing.member_id,
                    rank=standing.rank,
                    value=standing.value,
                    zone=zone,
                )
                moves[standing.member_id] = models.next_division(names, division, zone)
                spec = divisions.get(division)
                if final is not None and spec is not None:
                    await _reward(
                        session, brand=brand, league=league, division=spec, period=period, standing=standing, now=now
                    )
        await repo.set_divisions(session, league=league, divisions=moves, now=now)
    log.info("league %s/%s closed: %s members", league.spec.key, period, len(seats))
    return True


async def _reward(
    session: AsyncSession,
    *,
    brand: Brand,
    league: League,
    division: models.Division,
    period: str,
    standing: models.Standing,
    now: datetime,
) -> None:
    """Post a division's rank reward (inside the closing transaction, so at most once per seat)."""
    points = models.reward_points(division, standing.rank)
    if points <= 0:
        return
    await post_entry(
        session,
        brand_id=brand.id,
        member_id=MemberId(standing.member_id),
        points=points,
        source="league",
        key=league.spec.key,
        reason=f"{league.spec.title} · {division.title} {period}: rank {standing.rank}",
        occurred_at=now,
        tz=brand.tz,
        now=now,
    )
