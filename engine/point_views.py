"""What a member sees of their points: available, pending with release dates, next expiries, lifetime figures.

Read from the lots themselves, so exact at the instant asked: a held lot whose time came counts as
available, and a lot whose date passed counts as expired, before the release and expiry jobs write it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from engine import balances
from engine.expiry import Inactivity, inactivity_deadline, policy_of
from engine.lots import open_lots
from engine.tenants import get_brand_by_id

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.ledger import Lot
    from engine.tenants import Brand


class PendingPoints(msgspec.Struct, frozen=True, kw_only=True):
    """Points not yet spendable, and when they will be."""

    points: int
    available_at: datetime


class ExpiringPoints(msgspec.Struct, frozen=True, kw_only=True):
    """Points that will expire at an instant unless spent first."""

    points: int
    expires_at: datetime


class PointsView(msgspec.Struct, frozen=True, kw_only=True):
    """What a member has, exact at ``as_of`` (the answer of ``GET /v1/members/{id}/points``)."""

    available: int
    pending: int
    pending_lots: list[PendingPoints]
    """Pending points by release instant, soonest first."""
    expiring: list[ExpiringPoints]
    """The next expiries (available and pending points), soonest first."""
    lifetime_earned: int
    lifetime_spent: int
    as_of: datetime


async def points_view(
    session: AsyncSession, *, brand: Brand, member_id: MemberId, now: datetime, next_expiries: int = 3
) -> PointsView:
    """The member's available, pending and expiring points at ``now`` and lifetime figures."""
    lots = await open_lots(session, brand_id=brand.id, member_id=member_id)
    figures = await balances.stored(session, brand_id=brand.id, member_id=member_id)
    live = await _live(session, brand, member_id, lots, now)
    available = sum(lot.remaining for lot in live if not lot.pending_at(now))
    releases: dict[datetime, int] = {}
    for lot in live:
        if lot.pending_at(now):
            releases[lot.available_at] = releases.get(lot.available_at, 0) + lot.remaining
    expiries: dict[datetime, int] = {}
    for lot in live:
        if lot.expires_at is not None:
            expiries[lot.expires_at] = expiries.get(lot.expires_at, 0) + lot.remaining
    rule = policy_of(brand.settings).expiry
    if isinstance(rule, Inactivity) and live:
        deadline = inactivity_deadline(
            rule, await balances.last_activity(session, brand_id=brand.id, member_id=member_id), brand.tz
        )
        if deadline is not None:
            expiries[deadline] = expiries.get(deadline, 0) + sum(lot.remaining for lot in live)
    return PointsView(
        available=available,
        pending=sum(releases.values()),
        pending_lots=[PendingPoints(points=p, available_at=at) for at, p in sorted(releases.items())],
        expiring=[ExpiringPoints(points=p, expires_at=at) for at, p in sorted(expiries.items())][:next_expiries],
        lifetime_earned=figures.lifetime_earned,
        lifetime_spent=figures.lifetime_spent,
        as_of=now,
    )


async def _live(session: AsyncSession, brand: Brand, member_id: MemberId, lots: list[Lot], now: datetime) -> list[Lot]:
    """The lots not expired at ``now``: none once an inactivity deadline has passed."""
    rule = policy_of(brand.settings).expiry
    if isinstance(rule, Inactivity):
        deadline = inactivity_deadline(
            rule, await balances.last_activity(session, brand_id=brand.id, member_id=member_id), brand.tz
        )
        if deadline is not None and deadline <= now:
            return []
    return [lot for lot in lots if not lot.expired_at(now)]


async def available(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, now: datetime) -> int:
    """The member's spendable points at ``now``."""
    brand = await get_brand_by_id(session, brand_id)
    lots = await open_lots(session, brand_id=brand_id, member_id=member_id)
    return sum(lot.remaining for lot in await _live(session, brand, member_id, lots, now) if not lot.pending_at(now))
