"""What one domain offers another, as engine-level Protocols.

Domains never import each other (import-linter's layered contract). When one needs another's service —
a leaderboard period whose reward includes a badge, a challenge completion that grants one — the
composition root (``web/wiring.py``) passes the providing domain's implementation as a typed field, and
the consuming domain depends only on the Protocol defined here.
"""

from __future__ import annotations

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
