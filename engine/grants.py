"""What one domain offers another, as engine-level Protocols.

Domains never import each other (import-linter's layered contract). When one needs another's service —
a leaderboard period whose reward includes a badge, a challenge completion that grants one — the
composition root (``web/wiring.py``) passes the providing domain's implementation as a typed field, and
the consuming domain depends only on the Protocol defined here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.effects import Effect
    from engine.ids import MemberId
    from engine.tenants import Brand


class BadgeGranter(Protocol):
    """Award a badge inside the caller's transaction; returns the effects it wrote (none if already held)."""

    async def __call__(
        self,
        session: AsyncSession,
        *,
        brand: Brand,
        member_id: MemberId,
        badge_key: str,
        reason: str,
        source: str,
        source_ref: str,
        now: datetime,
    ) -> list[Effect]:
        """Award ``badge_key`` to ``member_id`` exactly once for ``(source, source_ref)``."""
        ...


class TierMultipliers(Protocol):
    """The earning multiplier of each of the brand's tiers (tier key → factor), for the points step."""

    async def __call__(self, session: AsyncSession, *, brand: Brand, version: int) -> Mapping[str, float]:
        """Factors by tier key for the brand at configuration ``version`` (empty when it has no tiers)."""
        ...


@dataclass(frozen=True, slots=True)
class PeriodScores:
    """A board period as a league reads it: its id, when it may be closed, and each member's score.

    ``scores`` holds ``(member_id, value, reached_at)`` with ``value`` turned so that higher is better;
    only members listed on the board (above its minimum, not opted out of a public board) appear.
    """

    period: str
    ends_at: datetime
    closes_at: datetime
    """``ends_at`` plus the board's grace: late events may still count until then."""
    scores: list[tuple[int, int, datetime]]
    decimals: int = 0
    """Score units per displayed unit: ``display = units / 10**decimals``."""
    descending: bool = True
    """Whether the board ranks higher totals first (``value`` is then the units, else their negation)."""


class BoardScores(Protocol):
    """Read a board's period scores (the leaderboards package's totals in SQL) for the leagues package."""

    async def __call__(
        self, session: AsyncSession, *, brand: Brand, board_key: str, period: str | None, now: datetime
    ) -> PeriodScores | None:
        """The scores of ``period`` (``None``: the period containing ``now``, in the brand's timezone).

        ``None`` when the brand has no such active board or the board has no fixed periods
        (``all_time``, ``window``).
        """
        ...
