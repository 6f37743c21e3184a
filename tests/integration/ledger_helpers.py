"""Helpers shared by the ledger and rewards integration tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select

from engine import balances, lots
from engine import members as members_repo
from engine.db import Database
from engine.expiry import parse_policy
from engine.ids import MemberId
from engine.ledger import Entry, replay
from engine.members import Member, MemberIn
from engine.orm import LedgerAllocationRow, LedgerRow, OutboxRow
from engine.settlement import save_policy
from engine.tenants import Brand, get_brand_by_id


async def member(db: Database, brand: Brand, external_id: str, now: datetime, **attributes: Any) -> Member:
    """Enrol a member."""
    created, _ = await members_repo.upsert_member(
        db, brand_id=brand.id, data=MemberIn(external_id=external_id, attributes=attributes), now=now
    )
    return created


async def with_policy(db: Database, brand: Brand, policy: dict[str, Any]) -> Brand:
    """Store a points policy and return the brand as now configured."""
    await save_policy(db, brand_id=brand.id, policy=parse_policy(policy))
    async with db.read() as session:
        return await get_brand_by_id(session, brand.id)


async def earn(db: Database, brand: Brand, member_id: MemberId, points: int, at: datetime, **kw: Any) -> int:
    """Earn a lot in its own transaction."""
    async with db.write() as session:
        return await lots.earn(
            session, brand, member_id=member_id, points=points, source=kw.pop("source", "rule"),
            key=kw.pop("key", "test"), occurred_at=at, now=kw.pop("now", at), **kw,
        )  # fmt: skip


async def spend(db: Database, brand: Brand, member_id: MemberId, points: int, now: datetime) -> lots.SpendResult:
    """Spend in its own transaction."""
    async with db.write() as session:
        return await lots.spend(session, brand, member_id=member_id, points=points, source="test", key="t", now=now)


async def figures(db: Database, brand: Brand, member_id: MemberId) -> balances.Balance:
    """The stored balance row."""
    async with db.read() as session:
        return await balances.stored(session, brand_id=brand.id, member_id=member_id)


async def replayed(db: Database, member_id: MemberId) -> balances.Balance:
    """The balance the member's ledger replays to."""
    async with db.read() as session:
        rows = await session.execute(select(LedgerRow).where(LedgerRow.member_id == member_id).order_by(LedgerRow.id))
        entries = [
            Entry(
                id=r.id,
                kind=r.kind,
                points=r.points,
                source=r.source,
                lot_id=r.lot_id,
                held=r.available_at is not None and r.available_at > r.created_at,
            )
            for (r,) in rows
        ]
        ids = [e.id for e in entries]
        allocations = await session.execute(
            select(LedgerAllocationRow.lot_id, LedgerAllocationRow.points).where(LedgerAllocationRow.lot_id.in_(ids))
        ) if ids else []  # fmt: skip
        return replay(entries, [(a, p) for a, p in allocations])


async def remaining_lots(db: Database, brand: Brand, member_id: MemberId) -> dict[int, int]:
    """Lot id -> what is left of it."""
    async with db.read() as session:
        return {lot.id: lot.remaining for lot in await lots.open_lots(session, brand_id=brand.id, member_id=member_id)}


async def entries_of(db: Database, member_id: MemberId, kind: str) -> list[Any]:
    """The member's ledger rows of one kind, oldest first."""
    async with db.read() as session:
        return list(
            await session.scalars(
                select(LedgerRow).where(LedgerRow.member_id == member_id, LedgerRow.kind == kind).order_by(LedgerRow.id)
            )
        )


async def topics(db: Database, brand: Brand) -> list[tuple[str, dict[str, Any]]]:
    """The brand's outbox topics and payload data, oldest first."""
    async with db.read() as session:
        rows = await session.execute(
            select(OutboxRow.topic, OutboxRow.payload).where(OutboxRow.brand_id == brand.id).order_by(OutboxRow.id)
        )
        return [(t, p["data"]) for t, p in rows]


async def count(db: Database, model: Any, **where: Any) -> int:
    """Rows of ``model`` matching ``where``."""
    async with db.read() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(await session.scalar(query) or 0)


def plain(value: Any) -> Any:
    """A struct as builtins (for comparisons)."""
    return msgspec.to_builtins(value)
