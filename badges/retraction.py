"""Badges' part of a retraction: revoke the award a clawed-back challenge completion gave.

Exposed to the challenges package through :class:`engine.grants.BadgeRevoker` (wired in ``web/wiring.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from badges import service
from badges.criteria import instance_key
from badges.orm import BadgeAwardRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from badges.openbadges import Urls
    from engine.grants import BadgeRevoker
    from engine.ids import MemberId
    from engine.tenants import Brand


def revoke_function(urls: Urls) -> BadgeRevoker:
    """A :class:`~engine.grants.BadgeRevoker` revoking with ``badge.revoked`` notices and hosted assertions."""

    async def badges_revoke(
        session: AsyncSession,
        *,
        brand: Brand,
        member_id: MemberId,
        badge_key: str,
        source: str,
        source_ref: str,
        reason: str,
        now: datetime,
    ) -> list[str]:
        uid = await session.scalar(
            select(BadgeAwardRow.uid).where(
                BadgeAwardRow.brand_id == brand.id,
                BadgeAwardRow.member_id == member_id,
                BadgeAwardRow.badge_key == badge_key,
                BadgeAwardRow.source == source,
                BadgeAwardRow.source_ref == instance_key(source, source_ref),
                BadgeAwardRow.revoked_at.is_(None),
            )
        )
        if uid is None:
            return []
        revoked = await service.revoke(
            session, brand=brand, member_id=member_id, badge_key=badge_key, reason=reason, now=now, urls=urls,
            award=uid,
        )  # fmt: skip
        return [a.uid for a in revoked]

    return badges_revoke
