"""Leaderboards on Redis sorted sets: periods, scopes, ties, around-me, archives, rebuild.

The public surface is small and imports nothing heavy: the SQL and Redis modules load only when used
(``leaderboards.service``, ``leaderboards.store``…), so importing a pure module stays pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId

__all__ = ["erase_member"]


async def erase_member(
    session: AsyncSession, redis: Redis, *, namespace: str, brand_id: BrandId, member_id: MemberId
) -> int:
    """Remove a member from every board of the brand, archives included (see ``leaderboards.privacy``)."""
    from leaderboards.privacy import erase_member as erase

    return await erase(session, redis, namespace=namespace, brand_id=brand_id, member_id=member_id)
