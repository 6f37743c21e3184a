"""A member's league as the API and the portal show it: division, cohort standings, the two zones.

During a period the standings are live (the board's current scores ranked with the same rules the close
uses, so the zones show who would move if the period ended now); once the period is closed they are the
recorded final ranks and zones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from leagues import models
from leagues import repository as repo
from leagues.service import UNSCORED, rank_cohort

if TYPE_CHECKING:
    from datetime import datetime

    from engine.db import Database
    from engine.grants import BoardScores, PeriodScores
    from engine.tenants import Brand
    from leagues.repository import Seat


@dataclass(frozen=True, slots=True)
class MemberLeague:
    """What one member sees of a league."""

    spec: models.LeagueSpec
    division: models.Division
    period: str | None
    """The period of the standings (``None``: the board has no current calendar period)."""
    final: bool
    """Whether the standings are a closed period's final ones."""
    cohort: int | None
    """``None`` until the member scores in the period (and is seated)."""
    standings: list[models.Standing] = field(default_factory=list)
    decimals: int = 0
    descending: bool = True

    def display(self, value: int) -> float:
        """A standing's value as the board shows scores (0 for a member the board no longer lists)."""
        if value <= UNSCORED:
            return 0.0
        units = value if self.descending else -value
        return float(units) / float(10**self.decimals)


async def member_league(
    db: Database, *, scores: BoardScores, brand: Brand, key: str, member_id: int, now: datetime
) -> MemberLeague:
    """The member's league ``key``.

    Raises:
        NotFound: the brand has no such league.
    """
    async with db.read() as session:
        league = await repo.get_league(session, brand_id=brand.id, key=key)
        spec = league.spec
        by_key = {d.key: d for d in spec.divisions}
        current = await scores(session, brand=brand, board_key=spec.board, period=None, now=now)
        found = await repo.seat_of(session, league_id=league.id, member_id=member_id)
        if found is None or (current is not None and found[0] != current.period and found[1].zone is not None):
            known = await repo.divisions_of(session, league_id=league.id, member_ids=[member_id])
            return _unseated(spec, by_key.get(known.get(member_id, ""), spec.divisions[0]), current)
        period, seat = found
        everyone = await repo.seats(session, league_id=league.id, period=period)
        mates = [s for s in everyone if (s.division, s.cohort) == (seat.division, seat.cohort)]
        live = current if current is not None and current.period == period else None
        if live is None and seat.zone is None:
            live = await scores(session, brand=brand, board_key=spec.board, period=period, now=now)
    if seat.zone is not None:
        table = _final_table(mates)
    else:
        values = {m: v for m, v, _ in live.scores} if live is not None else {}
        table = rank_cohort(league, seat.division, mates, values)
    shown = live or current
    return MemberLeague(
        spec=spec,
        division=by_key.get(seat.division, spec.divisions[0]),
        period=period,
        final=seat.zone is not None,
        cohort=seat.cohort,
        standings=table,
        decimals=shown.decimals if shown else 0,
        descending=shown.descending if shown else True,
    )


def _unseated(spec: models.LeagueSpec, division: models.Division, current: PeriodScores | None) -> MemberLeague:
    """A member without a seat in the current period: their division, no cohort yet."""
    return MemberLeague(
        spec=spec,
        division=division,
        period=current.period if current else None,
        final=False,
        cohort=None,
        decimals=current.decimals if current else 0,
        descending=current.descending if current else True,
    )


def _final_table(mates: list[Seat]) -> list[models.Standing]:
    """A closed period's cohort as it was recorded at the close."""
    return sorted(
        (
            models.Standing(member_id=s.member_id, rank=s.rank or 0, value=s.value or 0, zone=_zone(s.zone))
            for s in mates
        ),
        key=lambda s: (s.rank, s.member_id),
    )


def _zone(value: str | None) -> models.Zone:
    if value == "promotion":
        return "promotion"
    if value == "relegation":
        return "relegation"
    return "stay"
