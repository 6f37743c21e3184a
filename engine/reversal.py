"""The ledger side of a retraction: take back (part of) what an event's lots earned, never below zero.

A retraction cancels points of the lots tied to the event (``event_key``), pending ones first (pending
points are simply cancelled). Each take-back is a ``cancel`` entry with its allocations; unlike the
one-per-lot ``cancel`` of :func:`engine.lots.cancel_event_points` it carries no ``lot_id``, so a lot can be
cancelled in parts (two partial refunds of one order), and it can be limited to the lots of one source
(a completion's reward kept under the ``keep`` policy stays).

**Spent points (the no-overdraft rule): cap at zero.** What the event's lots no longer hold (it was spent
or expired) is taken from the member's other available points, first-expiring-first, as far as they go;
the rest is forgiven and reported as ``unrecovered`` (the balance CHECK never lets it go below zero, and a
debt that later earnings would silently repay surprises members). The take-back lowers the member's
lifetime earned points by what it took; it is not spending.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert, select

from engine import balances, lots
from engine.ledger import CANCEL, EARN

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import MemberId
    from engine.tenants import Brand

#: ``source`` of the entries a retraction writes.
SOURCE = "retraction"


class TakeBack(msgspec.Struct, frozen=True, kw_only=True):
    """What a take-back did: points cancelled on the event's lots, taken from other points, and forgiven."""

    cancelled: int = 0
    clawed: int = 0
    unrecovered: int = 0

    @property
    def taken(self) -> int:
        """Every point taken back."""
        return self.cancelled + self.clawed

    def __add__(self, other: TakeBack) -> TakeBack:
        return TakeBack(
            cancelled=self.cancelled + other.cancelled,
            clawed=self.clawed + other.clawed,
            unrecovered=self.unrecovered + other.unrecovered,
        )


async def earned_by(
    session: AsyncSession, brand: Brand, *, member_id: MemberId, event_key: str, sources: Collection[str], key: str = ""
) -> dict[int, int]:
    """The member's lots (id → points) tied to ``event_key`` from ``sources`` (and ``key`` when given)."""
    query = select(lots.LEDGER.c.id, lots.LEDGER.c.points).where(
        lots.LEDGER.c.brand_id == brand.id,
        lots.LEDGER.c.member_id == member_id,
        lots.LEDGER.c.event_key == event_key,
        lots.LEDGER.c.kind == EARN,
        lots.LEDGER.c.source.in_(list(sources)),
    )
    if key:
        query = query.where(lots.LEDGER.c.key == key)
    return {int(i): int(p) for i, p in await session.execute(query)}


async def take_back(
    session: AsyncSession,
    brand: Brand,
    *,
    member_id: MemberId,
    event_key: str,
    lot_ids: Collection[int],
    points: int,
    reason: str,
    now: datetime,
) -> TakeBack:
    """Take ``points`` back from the lots ``lot_ids`` (pending first), then the member's other points (cap at zero).

    Runs in the caller's transaction, under the member's balance lock (taken here).
    """
    if points <= 0:
        return TakeBack()
    await lots.settle_member(session, brand, member_id=member_id, now=now)  # locks the balance row first
    open_lots = {lot.id: lot for lot in await lots.open_lots(session, brand_id=brand.id, member_id=member_id)}
    targets = sorted(
        (open_lots[i] for i in lot_ids if i in open_lots), key=lambda lot: (not lot.counted_pending(), lot.id)
    )
    left = points
    rows: list[dict[str, Any]] = []
    takes: list[tuple[int, int]] = []
    pending = available = 0
    for lot in targets:
        if left <= 0:
            break
        take = min(lot.remaining, left)
        left -= take
        takes.append((lot.id, take))
        if lot.counted_pending():
            pending += take
        else:
            available += take
        rows.append(
            lots.entry_row(
                brand_id=brand.id,
                member_id=member_id,
                points=-take,
                kind=CANCEL,
                source=SOURCE,
                key="event",
                occurred_at=now,
                tz=brand.tz,
                now=now,
                reason=reason,
                event_key=event_key,
            )
        )
    if rows:
        ids = list(
            (
                await session.execute(
                    insert(lots.LEDGER).returning(lots.LEDGER.c.id, sort_by_parameter_order=True), rows
                )
            ).scalars()
        )
        await session.execute(
            insert(lots.ALLOCATIONS),
            [
                {"brand_id": brand.id, "entry_id": entry_id, "lot_id": lot_id, "points": take}
                for entry_id, (lot_id, take) in zip(ids, takes, strict=True)
            ],
        )
        await balances.apply(
            session, member_id=member_id, now=now, available=-available, pending=-pending, earned=-(available + pending)
        )
    clawed = 0
    if left > 0:
        spent = await lots.spend(
            session, brand, member_id=member_id, points=left, source=SOURCE, key="event", now=now, reason=reason,
            event_key=event_key, clamp=True,
        )  # fmt: skip
        clawed = spent.points
        if clawed:
            await balances.apply(session, member_id=member_id, now=now, spent=-clawed, earned=-clawed)
    return TakeBack(cancelled=pending + available, clawed=clawed, unrecovered=left - clawed)
