"""Opt-ins: which members joined which opt-in campaigns, and when."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, select

from challenges.orm import EnrolmentRow
from engine.db import batches, one_of
from engine.ids import MemberId

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


async def enrolments(
    session: AsyncSession, *, brand_id: BrandId, campaign_ids: set[int], member_ids: set[MemberId]
) -> dict[tuple[int, MemberId], datetime]:
    """When each member opted in to each campaign (missing: not opted in)."""
    if not campaign_ids or not member_ids:
        return {}
    found: dict[tuple[int, MemberId], datetime] = {}
    for members in batches(session, member_ids):
        rows = await session.execute(
            select(EnrolmentRow.campaign_id, EnrolmentRow.member_id, EnrolmentRow.opted_in_at).where(
                EnrolmentRow.brand_id == brand_id,
                EnrolmentRow.campaign_id.in_(campaign_ids),
                one_of(session, EnrolmentRow.member_id, members, BigInteger()),
            )
        )
        for campaign_id, member_id, opted_in_at in rows:
            found[(int(campaign_id), MemberId(member_id))] = opted_in_at
    return found


async def enrol(
    session: AsyncSession, *, brand_id: BrandId, campaign_id: int, member_id: MemberId, now: datetime
) -> tuple[datetime, bool]:
    """Opt the member in (a repeat keeps the first time); returns the opt-in time and whether it is new.

    The caller holds the member's row lock, so the check and the insert cannot race.
    """
    found = await session.scalar(
        select(EnrolmentRow.opted_in_at).where(
            EnrolmentRow.campaign_id == campaign_id, EnrolmentRow.member_id == member_id
        )
    )
    if found is not None:
        return found, False
    session.add(EnrolmentRow(brand_id=brand_id, campaign_id=campaign_id, member_id=member_id, opted_in_at=now))
    await session.flush()
    return now, True
