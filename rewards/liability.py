"""The program's points liability: outstanding points, expected expiries per month, redemption rate.

Outstanding figures are exact at ``now``, read from the lots (held lots whose time came count as
available, lots past their date as expired). Expected expiries group what is left of dated lots by the
local month of the last instant they are valid. The redemption rate over ``[start, end)`` is points spent on rewards
(net of cancelled redemptions) over points earned in that span.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import func, select

from engine.ledger import CANCEL, EARN, EXPIRE, REFUND, SPEND
from engine.lots import LEDGER, taken_from

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.tenants import Brand


_INSTANT = timedelta(microseconds=1)


class MonthlyExpiry(msgspec.Struct, frozen=True, kw_only=True):
    """Points due to expire in one local month (``YYYY-MM``) unless spent first."""

    month: str
    points: int


class Liability(msgspec.Struct, frozen=True, kw_only=True):
    """Outstanding points now and the flows of a period."""

    available: int
    pending: int
    expiring: list[MonthlyExpiry]
    earned: int
    """Points earned in the period (refunds excluded)."""
    redeemed: int
    """Points spent on rewards in the period, net of refunds of cancelled redemptions."""
    expired: int
    cancelled: int
    redemption_rate: float
    """``redeemed / earned`` over the period (0 when nothing was earned)."""
    start: datetime
    end: datetime
    as_of: datetime


async def _flows(session: AsyncSession, brand: Brand, start: datetime, end: datetime) -> dict[tuple[str, str], int]:
    rows = await session.execute(
        select(LEDGER.c.kind, LEDGER.c.source, func.sum(LEDGER.c.points))
        .where(LEDGER.c.brand_id == brand.id, LEDGER.c.created_at >= start, LEDGER.c.created_at < end)
        .group_by(LEDGER.c.kind, LEDGER.c.source)
    )
    return {(kind, source): int(total or 0) for kind, source, total in rows}


async def liability(session: AsyncSession, brand: Brand, *, start: datetime, end: datetime, now: datetime) -> Liability:
    """The brand's outstanding points at ``now`` and what was earned, redeemed and expired in ``[start, end)``."""
    taken = taken_from(LEDGER.c.id)
    rows = await session.execute(
        select(LEDGER.c.points - taken, LEDGER.c.available_at, LEDGER.c.expires_at).where(
            LEDGER.c.brand_id == brand.id, LEDGER.c.kind == EARN, LEDGER.c.points > taken
        )
    )
    available = pending = 0
    months: dict[str, int] = {}
    tz = brand.tz
    for left, available_at, expires_at in rows:
        if expires_at is not None and expires_at <= now:
            continue
        if available_at is not None and available_at > now:
            pending += left
        else:
            available += left
        if expires_at is not None:
            # The month of the last instant the points are valid: a lot that lapses at midnight starting
            # January belongs to December.
            month = (expires_at - _INSTANT).astimezone(tz).strftime("%Y-%m")
            months[month] = months.get(month, 0) + left
    flows = await _flows(session, brand, start, end)
    earned = sum(v for (kind, source), v in flows.items() if kind == EARN and source != REFUND)
    redeemed = -flows.get((SPEND, "redemption"), 0) - sum(
        v for (kind, source), v in flows.items() if kind == EARN and source == REFUND
    )
    expired = -sum(v for (kind, _), v in flows.items() if kind == EXPIRE)
    cancelled = -sum(v for (kind, _), v in flows.items() if kind == CANCEL)
    return Liability(
        available=available,
        pending=pending,
        expiring=[MonthlyExpiry(month=m, points=p) for m, p in sorted(months.items())],
        earned=earned,
        redeemed=redeemed,
        expired=expired,
        cancelled=cancelled,
        redemption_rate=round(redeemed / earned, 4) if earned else 0.0,
        start=start,
        end=end,
        as_of=now,
    )


class MonthlyRate(msgspec.Struct, frozen=True, kw_only=True):
    """Points earned and redeemed in one local month (``YYYY-MM``) and the redemption rate."""

    month: str
    earned: int
    redeemed: int
    redemption_rate: float


def _month_starts(start: datetime, end: datetime, brand: Brand) -> list[datetime]:
    tz = brand.tz
    local = start.astimezone(tz)
    year, month = local.year, local.month
    starts = [start]
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        boundary = datetime(year, month, 1, tzinfo=tz).astimezone(start.tzinfo)
        if boundary >= end:
            break
        starts.append(boundary)
    return starts


async def monthly_rates(session: AsyncSession, brand: Brand, *, start: datetime, end: datetime) -> list[MonthlyRate]:
    """Earned, redeemed and the redemption rate for each local month of ``[start, end)`` (one query per month)."""
    starts = _month_starts(start, end, brand)
    out: list[MonthlyRate] = []
    for first, after in zip(starts, [*starts[1:], end], strict=True):
        flows = await _flows(session, brand, first, after)
        earned = sum(v for (kind, source), v in flows.items() if kind == EARN and source != REFUND)
        redeemed = -flows.get((SPEND, "redemption"), 0) - sum(
            v for (kind, source), v in flows.items() if kind == EARN and source == REFUND
        )
        out.append(
            MonthlyRate(
                month=first.astimezone(brand.tz).strftime("%Y-%m"),
                earned=earned,
                redeemed=redeemed,
                redemption_rate=round(redeemed / earned, 4) if earned else 0.0,
            )
        )
    return out
