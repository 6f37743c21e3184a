"""Response bodies of the leagues endpoints (a league definition is :class:`leagues.models.LeagueSpec`)."""

from __future__ import annotations

from typing import Literal

import msgspec


class LeagueStandingOut(msgspec.Struct, kw_only=True):
    """One member of the cohort."""

    member: str
    """Their external id."""
    rank: int
    score: float
    zone: Literal["promotion", "relegation", "stay"]
    """Where the member finishes (live during the period: where they would finish if it ended now)."""
    you: bool


class MemberLeagueOut(msgspec.Struct, kw_only=True):
    """A member's league: division, cohort standings and the promotion and relegation zones."""

    league: str
    title: str
    board: str
    period: str | None
    final: bool
    """Whether ``standings`` are a closed period's final ones (else live)."""
    division: str
    division_title: str
    cohort: int | None
    """``null`` until the member scores in the period and is seated (rounds run every few minutes)."""
    cohort_size: int
    promote: int
    relegate: int
    standings: list[LeagueStandingOut]
