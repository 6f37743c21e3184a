"""Lots in the append-only ledger: earning, spending first-expiring-first, settling, cancelling.

Every function here runs inside the caller's transaction and keeps the member's ``point_balances`` row
in step with the entries it writes. Anything that consumes lots takes the balance row's lock first, so
one member's allocations never race; the row's CHECK is the last word on overdraft. The pure rules are
in :mod:`engine.ledger`; :mod:`engine.settlement` runs the release and expiry jobs over many members.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import BigInteger, exists, func, insert, select
from sqlalchemy import cast as cast_

from engine import balances, metrics
from engine.errors import InsufficientPoints
from engine.expiry import Inactivity, inactivity_deadline, policy_of, rule_kind
from engine.expiry import expires_at as expiry_date
from engine.ledger import CANCEL, EARN, EXPIRE, RELEASE, SPEND, Lot, Settlement, allocate, settle
from engine.orm import LedgerAllocationRow, LedgerRow, MemberRow, OutboxRow
from engine.periods import local_day

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.tenants import Brand

LEDGER = cast("Table", LedgerRow.__table__)
ALLOCATIONS = cast("Table", LedgerAllocationRow.__table__)
OUTBOX = cast("Table", OutboxRow.__table__)
#: ``uow.stash`` key the points step fills: ``(event index, rule key) -> holding period`` of held awards.
HOLDING_STASH = "points.holding"


class SpendResult(msgspec.Struct, frozen=True, kw_only=True):
    """A spend entry and the lots it consumed."""

    entry_id: int | None
    points: int
    """Points actually taken (less than asked only when clamping)."""
    allocations: list[tuple[int, int]] = []
    """``(lot id, points)`` taken from each lot, first-expiring-first."""


class SettleOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What settling a member wrote."""

    released: int = 0
    expired: int = 0


class CancelOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Points of a reversed event taken back, and what could not be (already spent)."""

    cancelled: int = 0
    unrecovered: int = 0


def entry_row(
    *,
    brand_id: BrandId,
    member_id: MemberId,
    points: int,
    kind: str,
    source: str,
    key: str,
    occurred_at: datetime,
    tz: ZoneInfo,
    now: datetime,
    reason: str = "",
    event_key: str | None = None,
    lot_id: int | None = None,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
    day: date | None = None,
) -> dict[str, Any]:
    """A ledger row as a plain dict (for executemany inserts); ``day``: ``occurred_at``'s local day, if known."""
    return {
        "brand_id": brand_id,
        "member_id": member_id,
        "event_key": event_key,
        "points": points,
        "source": source,
        "key": key,
        "reason": reason,
        "occurred_at": occurred_at,
        "local_day": local_day(occurred_at, tz) if day is None else day,
        "created_at": now,
        "kind": kind,
        "lot_id": lot_id,
        "available_at": available_at,
        "expires_at": expires_at,
    }


def lot_row(
    brand: Brand,
    *,
    member_id: MemberId,
    points: int,
    source: str,
    key: str,
    occurred_at: datetime,
    now: datetime,
    reason: str = "",
    event_key: str | None = None,
    holding: timedelta = timedelta(0),
    expires_at: datetime | bool | None = True,
) -> dict[str, Any]:
    """A lot: available at once, or ``holding`` after ``occurred_at``; dated by the brand's policy.

    ``expires_at=True`` means "by the policy"; pass a datetime or ``None`` to fix it (refunds keep their date).
    """
    available_at = occurred_at + holding if holding > timedelta(0) else now
    expiry = expiry_date(policy_of(brand.settings).expiry, occurred_at, brand.tz) if expires_at is True else expires_at
    return entry_row(
        brand_id=brand.id,
        member_id=member_id,
        points=points,
        kind=EARN,
        source=source,
        key=key,
        occurred_at=occurred_at,
        tz=brand.tz,
        now=now,
        reason=reason,
        event_key=event_key,
        available_at=available_at,
        expires_at=cast("datetime | None", expiry),
    )


def taken_from(lot_id: Any) -> Any:
    """What consuming entries took from the lot ``lot_id`` (a correlated sum over the allocations' lot index).

    Cast back to a 64-bit integer: PostgreSQL sums ``bigint`` as ``numeric``.
    """
    total = select(func.coalesce(func.sum(ALLOCATIONS.c.points), 0)).where(ALLOCATIONS.c.lot_id == lot_id)
    return cast_(total.scalar_subquery(), BigInteger)


def _lot_query(brand_id: BrandId) -> Any:
    lot = LEDGER.alias("lot")
    release = LEDGER.alias("rel")
    taken = taken_from(lot.c.id)
    released = exists().where(release.c.lot_id == lot.c.id, release.c.kind == RELEASE)
    query = select(
        lot.c.id, lot.c.points, lot.c.points - taken, lot.c.available_at, lot.c.expires_at,
        lot.c.available_at > lot.c.created_at, released, lot.c.member_id,
    ).where(lot.c.brand_id == brand_id, lot.c.kind == EARN, lot.c.points > taken)  # fmt: skip
    return query, lot


def _to_lot(row: Any) -> Lot:
    return Lot(
        id=row[0],
        points=row[1],
        remaining=row[2],
        available_at=row[3],
        expires_at=row[4],
        held=bool(row[5]),
        released=bool(row[6]),
    )


async def open_lots(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[Lot]:
    """The member's lots with something left, oldest first."""
    query, lot = _lot_query(brand_id)
    rows = await session.execute(query.where(lot.c.member_id == member_id).order_by(lot.c.id))
    return [_to_lot(row) for row in rows]


async def earn(
    session: AsyncSession,
    brand: Brand,
    *,
    member_id: MemberId,
    points: int,
    source: str,
    key: str,
    occurred_at: datetime,
    now: datetime,
    reason: str = "",
    event_key: str | None = None,
    holding: timedelta = timedelta(0),
    expires_at: datetime | bool | None = True,
) -> int:
    """Write one lot and credit the balance row; returns the lot's id."""
    row = lot_row(
        brand, member_id=member_id, points=points, source=source, key=key, occurred_at=occurred_at, now=now,
        reason=reason, event_key=event_key, holding=holding, expires_at=expires_at,
    )  # fmt: skip
    lot_id = int((await session.execute(insert(LEDGER).returning(LEDGER.c.id), [row])).scalar_one())
    held = row["available_at"] > now
    await balances.add_earnings(
        session,
        [
            {
                "brand_id": brand.id,
                "member_id": member_id,
                "available": 0 if held else points,
                "pending": points if held else 0,
                "lifetime_earned": 0 if source == "refund" else points,
                "last_activity_at": occurred_at,
                "updated_at": now,
            }
        ],
    )
    if source == "refund":
        await balances.apply(session, member_id=member_id, now=now, spent=-points)
    return lot_id


async def _consume(
    session: AsyncSession,
    brand: Brand,
    *,
    member_id: MemberId,
    rows: list[dict[str, Any]],
    takes: list[list[tuple[int, int]]],
) -> list[int]:
    """Insert consuming entries and their allocations (``takes[i]`` for ``rows[i]``); returns the entry ids."""
    if not rows:
        return []
    ids = list(
        (await session.execute(insert(LEDGER).returning(LEDGER.c.id, sort_by_parameter_order=True), rows)).scalars()
    )
    allocations = [
        {"brand_id": brand.id, "entry_id": entry_id, "lot_id": lot_id, "points": points}
        for entry_id, take in zip(ids, takes, strict=True)
        for lot_id, points in take
        if points > 0
    ]
    if allocations:
        await session.execute(insert(ALLOCATIONS), allocations)
    return ids


async def _write_settlement(
    session: AsyncSession, brand: Brand, *, member_id: MemberId, plan: Settlement, lots: dict[int, Lot], now: datetime
) -> SettleOutcome:
    if plan.empty:
        return SettleOutcome()
    tz = brand.tz
    common: dict[str, Any] = {"brand_id": brand.id, "member_id": member_id, "tz": tz, "now": now}
    releases = [
        entry_row(points=0, kind=RELEASE, source="release", key="", occurred_at=lots[lot_id].available_at,
                  lot_id=lot_id, **common)
        for lot_id, _ in plan.releases
    ]  # fmt: skip
    if releases:
        await session.execute(insert(LEDGER), releases)
    rule = policy_of(brand.settings).expiry
    expiries = [
        entry_row(points=-points, kind=EXPIRE, source="expiry", key=rule_kind(rule),
                  occurred_at=min(lots[lot_id].expires_at or now, now), lot_id=lot_id, **common)
        for lot_id, points, _ in plan.expiries
    ]  # fmt: skip
    await _consume(
        session, brand, member_id=member_id, rows=expiries, takes=[[(lot_id, p)] for lot_id, p, _ in plan.expiries]
    )
    released = sum(p for _, p in plan.releases)
    from_pending = sum(p for _, p, pending in plan.expiries if pending)
    from_available = sum(p for _, p, pending in plan.expiries if not pending)
    await balances.apply(
        session, member_id=member_id, now=now, available=released - from_available, pending=-released - from_pending
    )
    if plan.expiries:
        await _notify_expired(session, brand, member_id=member_id, plan=plan, lots=lots, now=now)
        metrics.count_on_commit(session, metrics.POINTS_EXPIRED, brand, amount=from_pending + from_available)
    return SettleOutcome(released=released, expired=from_pending + from_available)


async def _notify_expired(
    session: AsyncSession, brand: Brand, *, member_id: MemberId, plan: Settlement, lots: dict[int, Lot], now: datetime
) -> None:
    # Imported here: the pipeline imports this module for its ledger writes, and owns the outbox row format.
    from engine.pipeline import outbox_row

    external_id = await session.scalar(select(MemberRow.external_id).where(MemberRow.id == member_id))
    data = {
        "member": external_id,
        "points": sum(p for _, p, _ in plan.expiries),
        "lots": [
            {"lot": lot_id, "points": p, "expires_at": (lots[lot_id].expires_at or now).isoformat()}
            for lot_id, p, _ in plan.expiries
        ],
    }
    await session.execute(insert(OUTBOX), [outbox_row(brand_id=brand.id, topic="points.expired", data=data, now=now)])


async def _lock_and_settle(
    session: AsyncSession, brand: Brand, *, member_id: MemberId, now: datetime, locked: bool = False
) -> tuple[list[Lot], SettleOutcome]:
    """Lock the member's row (unless ``locked``), write what is due on the lots, and return them as they are after it."""
    if not locked:
        await balances.lock(session, brand_id=brand.id, member_id=member_id, now=now)
    lots = await open_lots(session, brand_id=brand.id, member_id=member_id)
    rule = policy_of(brand.settings).expiry
    # The last activity matters only to the inactivity policy: no round trip for it under the others.
    last = (
        await balances.last_activity(session, brand_id=brand.id, member_id=member_id)
        if isinstance(rule, Inactivity)
        else None
    )
    deadline = inactivity_deadline(rule, last, brand.tz)
    plan = settle(lots, now, expire_all=deadline is not None and deadline <= now)
    outcome = await _write_settlement(
        session, brand, member_id=member_id, plan=plan, lots={x.id: x for x in lots}, now=now
    )
    if plan.empty:
        return lots, outcome
    expired = {lot_id for lot_id, _, _ in plan.expiries}
    released = {lot_id for lot_id, _ in plan.releases}
    after = [
        msgspec.structs.replace(lot, released=lot.released or lot.id in released)
        for lot in lots
        if lot.id not in expired
    ]
    return after, outcome


async def settle_member(session: AsyncSession, brand: Brand, *, member_id: MemberId, now: datetime) -> SettleOutcome:
    """Release the member's held lots whose time came and expire what is due, each exactly once."""
    _, outcome = await _lock_and_settle(session, brand, member_id=member_id, now=now)
    return outcome


async def spend(
    session: AsyncSession,
    brand: Brand,
    *,
    member_id: MemberId,
    points: int,
    source: str,
    key: str,
    now: datetime,
    reason: str = "",
    occurred_at: datetime | None = None,
    event_key: str | None = None,
    clamp: bool = False,
    locked: bool = False,
) -> SpendResult:
    """Take ``points`` from the member's lots, first-expiring-first, as one ``spend`` entry.

    With ``clamp`` a spend beyond the balance takes what there is (possibly nothing) instead of failing.
    With ``locked`` the caller has already locked the member's balance row in this transaction
    (:func:`engine.balances.lock`), so it is not locked again.

    Raises:
        InsufficientPoints: the member's available points (at ``now``) do not cover ``points``.
    """
    lots, _ = await _lock_and_settle(session, brand, member_id=member_id, now=now, locked=locked)
    take, short = allocate(lots, points, now)
    if short:
        if not clamp:
            raise InsufficientPoints(
                f"the member has {points - short} points available, {points} are needed", field="points"
            )
        points -= short
        if points <= 0:
            return SpendResult(entry_id=None, points=0)
    row = entry_row(
        brand_id=brand.id, member_id=member_id, points=-points, kind=SPEND, source=source, key=key,
        occurred_at=occurred_at or now, tz=brand.tz, now=now, reason=reason, event_key=event_key,
    )  # fmt: skip
    (entry_id,) = await _consume(session, brand, member_id=member_id, rows=[row], takes=[take])
    await balances.apply(session, member_id=member_id, now=now, available=-points, spent=points, activity=now)
    return SpendResult(entry_id=entry_id, points=points, allocations=take)


async def spend_allocations(session: AsyncSession, *, entry_id: int) -> list[tuple[int, int, datetime | None]]:
    """``(lot id, points, lot expiry)`` a spend entry took, first-expiring-first."""
    rows = await session.execute(
        select(ALLOCATIONS.c.lot_id, ALLOCATIONS.c.points, LEDGER.c.expires_at)
        .join(LEDGER, LEDGER.c.id == ALLOCATIONS.c.lot_id)
        .where(ALLOCATIONS.c.entry_id == entry_id)
        .order_by(ALLOCATIONS.c.id)
    )
    return [(int(lot_id), int(points), expires) for lot_id, points, expires in rows]


async def cancel_event_points(session: AsyncSession, brand: Brand, event_key: str, now: datetime) -> CancelOutcome:
    """Take back what is left of the lots an event earned (it was reversed: a return, a deleted review).

    Pending points are cancelled whole; available points only as far as they are unspent: what was
    already spent stays spent and is reported as ``unrecovered`` (the balance never goes below zero).
    A repeated call cancels nothing more.
    """
    rows = await session.execute(
        select(LEDGER.c.member_id, LEDGER.c.id, LEDGER.c.points).where(
            LEDGER.c.brand_id == brand.id, LEDGER.c.event_key == event_key, LEDGER.c.kind == EARN
        )
    )
    by_member: dict[MemberId, dict[int, int]] = {}
    for member_id, lot_id, points in rows:
        by_member.setdefault(member_id, {})[lot_id] = points
    cancelled = 0
    for member_id in sorted(by_member):
        earned = by_member[member_id]
        lots, _ = await _lock_and_settle(session, brand, member_id=member_id, now=now)
        targets = [lot for lot in lots if lot.id in earned]
        cancelled_ids = await _cancelled(session, list(earned))
        targets = [lot for lot in targets if lot.id not in cancelled_ids]
        rows_out = [
            entry_row(brand_id=brand.id, member_id=member_id, points=-lot.remaining, kind=CANCEL, source="reversal",
                      key="event", occurred_at=now, tz=brand.tz, now=now, event_key=event_key, lot_id=lot.id)
            for lot in targets
        ]  # fmt: skip
        await _consume(
            session, brand, member_id=member_id, rows=rows_out, takes=[[(x.id, x.remaining)] for x in targets]
        )
        pending = sum(x.remaining for x in targets if x.counted_pending())
        available = sum(x.remaining for x in targets if not x.counted_pending())
        if targets:
            await balances.apply(session, member_id=member_id, now=now, available=-available, pending=-pending)
        cancelled += pending + available
    unrecovered = await _spent_of(session, [lot_id for earned in by_member.values() for lot_id in earned])
    return CancelOutcome(cancelled=cancelled, unrecovered=unrecovered)


async def _cancelled(session: AsyncSession, lot_ids: list[int]) -> set[int]:
    rows = await session.scalars(select(LEDGER.c.lot_id).where(LEDGER.c.lot_id.in_(lot_ids), LEDGER.c.kind == CANCEL))
    return {int(x) for x in rows}


async def _spent_of(session: AsyncSession, lot_ids: list[int]) -> int:
    """Points of these lots that spend entries consumed."""
    if not lot_ids:
        return 0
    total = await session.scalar(
        select(cast_(func.coalesce(func.sum(ALLOCATIONS.c.points), 0), BigInteger))
        .join(LEDGER, LEDGER.c.id == ALLOCATIONS.c.entry_id)
        .where(ALLOCATIONS.c.lot_id.in_(lot_ids), LEDGER.c.kind == SPEND)
    )
    return int(total or 0)
