"""The ``point_balances`` row: one per member, written in the same transaction as each ledger entry.

Its CHECKs (``available >= 0``, ``pending >= 0``) are what forbids an overdraft in the database: two
concurrent spends both decrement the same row, and the second sees the first's result or fails. Every
path that consumes lots first takes the row's lock (:func:`lock`), so lot allocations of one member are
serialised too. Reads of the figures a member sees (:func:`points_view`) come from the lots themselves,
exact to the instant (held lots whose time came count as available before the release job runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import BigInteger, func, select, update

from engine.db import greatest, insert_for, one_of
from engine.errors import InsufficientPoints
from engine.ledger import Balance
from engine.orm import PointBalanceRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId

BALANCES = cast("Table", PointBalanceRow.__table__)
_FIGURES = (BALANCES.c.available, BALANCES.c.pending, BALANCES.c.lifetime_earned, BALANCES.c.lifetime_spent)


def _balance(row: Any) -> Balance:
    return Balance(available=row[0], pending=row[1], lifetime_earned=row[2], lifetime_spent=row[3])


async def lock(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, now: datetime) -> Balance:
    """Lock the member's balance row (creating it at zero) and return its figures: one statement when it exists."""
    touch = (
        update(BALANCES)
        .where(BALANCES.c.member_id == member_id, BALANCES.c.brand_id == brand_id)
        .values(updated_at=now)
        .returning(*_FIGURES)
    )
    row = (await session.execute(touch)).first()
    if row is None:
        await session.execute(
            insert_for(session)(BALANCES)
            .values(brand_id=brand_id, member_id=member_id, available=0, pending=0, lifetime_earned=0,
                    lifetime_spent=0, updated_at=now)
            .on_conflict_do_nothing(index_elements=["member_id"])
        )  # fmt: skip
        row = (await session.execute(touch)).first()
    assert row is not None  # the row exists now
    return _balance(row)


async def apply(
    session: AsyncSession,
    *,
    member_id: MemberId,
    now: datetime,
    available: int = 0,
    pending: int = 0,
    earned: int = 0,
    spent: int = 0,
    activity: datetime | None = None,
) -> None:
    """Move the member's figures by the given amounts.

    Raises:
        InsufficientPoints: the change would take ``available`` below zero (checked in the statement itself).
    """
    values: dict[str, Any] = {
        "available": BALANCES.c.available + available,
        "pending": BALANCES.c.pending + pending,
        "lifetime_earned": BALANCES.c.lifetime_earned + earned,
        "lifetime_spent": BALANCES.c.lifetime_spent + spent,
        "updated_at": now,
    }
    if activity is not None:
        values["last_activity_at"] = greatest(session, func.coalesce(BALANCES.c.last_activity_at, activity), activity)
    statement = update(BALANCES).where(BALANCES.c.member_id == member_id).values(**values)
    if available < 0:
        # Conditional: under concurrency the second writer re-reads the row after the first commits.
        statement = statement.where(BALANCES.c.available >= -available)
    result = await session.execute(statement)
    if available < 0 and not getattr(result, "rowcount", 0):
        raise InsufficientPoints(f"{-available} points are more than the member has available", field="points")


async def add_earnings(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Upsert many members' earnings in one statement (the pipeline's batch; one row per member).

    Each row: ``brand_id, member_id, available, pending, lifetime_earned, last_activity_at, updated_at``.
    """
    if not rows:
        return
    stmt = insert_for(session)(BALANCES)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["member_id"],
        set_={
            "available": BALANCES.c.available + excluded.available,
            "pending": BALANCES.c.pending + excluded.pending,
            "lifetime_earned": BALANCES.c.lifetime_earned + excluded.lifetime_earned,
            "last_activity_at": greatest(
                session, func.coalesce(BALANCES.c.last_activity_at, excluded.last_activity_at),
                excluded.last_activity_at,
            ),
            "updated_at": excluded.updated_at,
        },
    )  # fmt: skip
    await session.execute(stmt, [{"lifetime_spent": 0, **row} for row in sorted(rows, key=lambda r: r["member_id"])])


async def stored(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> Balance:
    """The row's figures as written (no lock; zero when the member never had points)."""
    row = (
        await session.execute(
            select(*_FIGURES).where(BALANCES.c.member_id == member_id, BALANCES.c.brand_id == brand_id)
        )
    ).first()
    return Balance() if row is None else _balance(row)


async def last_activity(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> datetime | None:
    """The member's last earn or spend, as the inactivity policy sees it."""
    value = await session.scalar(
        select(BALANCES.c.last_activity_at).where(BALANCES.c.member_id == member_id, BALANCES.c.brand_id == brand_id)
    )
    return cast("datetime | None", value)


async def inactive_since(session: AsyncSession, *, member_ids: list[MemberId], cutoff: datetime) -> list[MemberId]:
    """Members (of ``member_ids``) with points whose last activity is at or before ``cutoff`` (may be inactive)."""
    rows = await session.scalars(
        select(BALANCES.c.member_id).where(
            one_of(session, BALANCES.c.member_id, member_ids, BigInteger),
            BALANCES.c.last_activity_at <= cutoff,
            (BALANCES.c.available + BALANCES.c.pending) > 0,
        )
    )
    return [cast("MemberId", m) for m in rows]
