"""The release and expiry jobs: write what time made due on the lots, exactly once per lot.

Reads never wait for these jobs (they treat due lots as released or expired already); the jobs write
the ``release`` and ``expire`` entries and move the balance rows. Each member is settled in a short
transaction holding the member's balance-row lock, taken with ``SKIP LOCKED`` on PostgreSQL so two
concurrent runs share the members instead of queueing; a run that reaches a member another run just
settled re-reads the lots under the lock and finds nothing left to do, and the unique
``(lot_id, kind)`` index is the last guard. ``points.expiring`` notices go out ahead of expiry, once
per lot and threshold (``point_expiry_notices``), one message per member and run.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, exists, insert, select

from engine import lots
from engine.balances import BALANCES
from engine.db import chunks, insert_for
from engine.errors import NotFound
from engine.expiry import (
    SETTINGS_KEY,
    Inactivity,
    NoExpiry,
    PointsPolicy,
    due_notices,
    inactivity_cutoff,
    inactivity_deadline,
    policy_of,
)
from engine.ledger import EARN, EXPIRE, RELEASE
from engine.lots import LEDGER, OUTBOX
from engine.orm import BrandRow, ExpiryNoticeRow, MemberRow
from engine.tenants import bump_config_version, get_brand_by_id, list_brands

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId, MemberId
    from engine.tenants import Brand

NOTICES = ExpiryNoticeRow.__table__
BATCH = 100


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    """What one run of a job wrote."""

    members: int = 0
    released: int = 0
    expired: int = 0
    notices: int = 0


def _taken(lot: Any) -> Any:
    return lots.taken_from(lot.c.id)


def _without(lot: Any, kind: str) -> Any:
    other = LEDGER.alias(f"done_{kind}")
    return ~exists().where(other.c.lot_id == lot.c.id, other.c.kind == kind)


async def _due_members(
    session: AsyncSession, *, now: datetime, kind: str, brand_id: BrandId | None
) -> dict[BrandId, set[MemberId]]:
    lot = LEDGER.alias("lot")
    if kind == RELEASE:
        due = and_(lot.c.available_at > lot.c.created_at, lot.c.available_at <= now)
    else:
        due = and_(lot.c.expires_at.is_not(None), lot.c.expires_at <= now)
    query = select(lot.c.brand_id, lot.c.member_id).where(
        lot.c.kind == EARN, due, _without(lot, kind), lot.c.points > _taken(lot)
    )
    if brand_id is not None:
        query = query.where(lot.c.brand_id == brand_id)
    rows = await session.execute(query.distinct())
    found: dict[BrandId, set[MemberId]] = {}
    for brand_id, member_id in rows:
        found.setdefault(brand_id, set()).add(member_id)
    return found


async def _inactive_members(
    session: AsyncSession, brands: Iterable[Brand], now: datetime
) -> dict[BrandId, set[MemberId]]:
    found: dict[BrandId, set[MemberId]] = {}
    for brand in brands:
        rule = policy_of(brand.settings).expiry
        if not isinstance(rule, Inactivity):
            continue
        rows = await session.execute(
            select(BALANCES.c.member_id, BALANCES.c.last_activity_at).where(
                BALANCES.c.brand_id == brand.id,
                BALANCES.c.last_activity_at <= inactivity_cutoff(rule, now, brand.tz),
                (BALANCES.c.available + BALANCES.c.pending) > 0,
            )
        )
        for member_id, last in rows:
            deadline = inactivity_deadline(rule, last, brand.tz)
            if deadline is not None and deadline <= now:
                found.setdefault(brand.id, set()).add(member_id)
    return found


async def _settle(db: Database, due: dict[BrandId, set[MemberId]], now: datetime) -> JobRun:
    members = released = expired = 0
    for brand_id, member_ids in due.items():
        async with db.read() as session:
            brand = await get_brand_by_id(session, brand_id)
        for chunk in chunks(sorted(member_ids), BATCH):
            async with db.write() as session:
                locked = await session.scalars(
                    select(BALANCES.c.member_id)
                    .where(BALANCES.c.member_id.in_(chunk))
                    .order_by(BALANCES.c.member_id)
                    .with_for_update(skip_locked=True)
                )
                for member_id in list(locked):
                    outcome = await lots.settle_member(session, brand, member_id=member_id, now=now)
                    members += 1
                    released += outcome.released
                    expired += outcome.expired
    return JobRun(members=members, released=released, expired=expired)


async def release_due(db: Database, *, now: datetime, brand_id: BrandId | None = None) -> JobRun:
    """Write the ``release`` entries of held lots whose time came (and whatever else is due for those members).

    Args:
        db: the database.
        now: the instant the job runs at.
        brand_id: only this brand's members (``None``: every brand, as the scheduled job runs).
    """
    async with db.read() as session:
        due = await _due_members(session, now=now, kind=RELEASE, brand_id=brand_id)
    return await _settle(db, due, now)


async def expire_due(db: Database, *, now: datetime, brand_id: BrandId | None = None) -> JobRun:
    """Expire what is left of lots past their date (and all points of inactive members); send expiring notices.

    Args:
        db: the database.
        now: the instant the job runs at.
        brand_id: only this brand's members and notices (``None``: every brand, as the scheduled job runs).
    """
    async with db.read() as session:
        brands = [b for b in await list_brands(session) if brand_id is None or b.id == brand_id]
        due = await _due_members(session, now=now, kind=EXPIRE, brand_id=brand_id)
        for brand_id, members in (await _inactive_members(session, brands, now)).items():
            due.setdefault(brand_id, set()).update(members)
    run = await _settle(db, due, now)
    notices = 0
    for brand in brands:
        notices += await _send_notices(db, brand, now=now)
    return msgspec.structs.replace(run, notices=notices)


async def _expiring_lots(session: AsyncSession, brand: Brand, *, now: datetime, horizon: timedelta) -> list[Any]:
    """``(lot id, member id, external id, remaining, expires_at)`` of lots expiring within ``horizon``."""
    lot = LEDGER.alias("lot")
    rule = policy_of(brand.settings).expiry
    query = (
        select(lot.c.id, lot.c.member_id, MemberRow.external_id, lot.c.points - _taken(lot), lot.c.expires_at)
        .join(MemberRow, MemberRow.id == lot.c.member_id)
        .where(lot.c.brand_id == brand.id, lot.c.kind == EARN, lot.c.points > _taken(lot), _without(lot, EXPIRE))
    )
    if not isinstance(rule, Inactivity):
        rows = await session.execute(query.where(lot.c.expires_at > now, lot.c.expires_at <= now + horizon))
        return list(rows)
    # Inactivity: every lot of a member shares the member's deadline.
    cutoff = inactivity_cutoff(rule, now + horizon, brand.tz)
    rows = await session.execute(
        query.add_columns(BALANCES.c.last_activity_at)
        .join(BALANCES, BALANCES.c.member_id == lot.c.member_id)
        .where(BALANCES.c.last_activity_at <= cutoff)
    )
    found = []
    for row in rows:
        deadline = inactivity_deadline(rule, row[5], brand.tz)
        if deadline is not None and now < deadline <= now + horizon:
            found.append((row[0], row[1], row[2], row[3], deadline))
    return found


async def _send_notices(db: Database, brand: Brand, *, now: datetime) -> int:
    policy = policy_of(brand.settings)
    if not policy.notice_days or isinstance(policy.expiry, NoExpiry):
        return 0
    async with db.write() as session:
        candidates = await _expiring_lots(session, brand, now=now, horizon=timedelta(days=max(policy.notice_days)))
        wanted = [
            {"lot_id": lot_id, "days_before": days, "brand_id": brand.id, "created_at": now}
            for lot_id, _, _, _, expires in candidates
            for days in due_notices(expires, now, policy.notice_days)
        ]
        if not wanted:
            return 0
        inserted: set[tuple[int, int]] = set()
        for chunk in chunks(wanted):
            result = await session.execute(
                insert_for(session)(NOTICES)
                .values(chunk)
                .on_conflict_do_nothing(index_elements=["lot_id", "days_before"])
                .returning(NOTICES.c.lot_id, NOTICES.c.days_before)
            )
            inserted.update((int(a), int(b)) for a, b in result)
        return await _write_notices(session, brand, candidates=candidates, inserted=inserted, now=now)


async def _write_notices(
    session: AsyncSession, brand: Brand, *, candidates: list[Any], inserted: set[tuple[int, int]], now: datetime
) -> int:
    """One ``points.expiring`` message per member for the lots that newly reached a threshold."""
    from engine.pipeline import outbox_row  # the pipeline imports lots; the outbox format lives there

    newly: dict[int, int] = {}
    for lot_id, days in inserted:
        newly[lot_id] = min(days, newly.get(lot_id, days))
    per_member: dict[str, dict[str, Any]] = {}
    for lot_id, _, external_id, remaining, expires in candidates:
        if lot_id not in newly:
            continue
        entry = per_member.setdefault(external_id, {"member": external_id, "points": 0, "lots": []})
        entry["points"] += remaining
        entry["lots"].append({"lot": lot_id, "points": remaining, "expires_at": expires.isoformat()})
        entry["days_before"] = min(newly[lot_id], entry.get("days_before", newly[lot_id]))
        entry["expires_at"] = min(expires.isoformat(), entry.get("expires_at", expires.isoformat()))
    rows = [outbox_row(brand_id=brand.id, topic="points.expiring", data=data, now=now) for data in per_member.values()]
    if rows:
        await session.execute(insert(OUTBOX), rows)
    return len(rows)


async def save_policy(db: Database, *, brand_id: BrandId, policy: PointsPolicy) -> None:
    """Store the program's points policy in the brand's settings (new lots follow it; existing lots keep their dates)."""
    async with db.write() as session:
        await store_policy(session, brand_id=brand_id, policy=policy)


async def store_policy(session: AsyncSession, *, brand_id: BrandId, policy: PointsPolicy) -> bool:
    """:func:`save_policy` in the caller's transaction; answers whether the stored policy changed."""
    row = await session.get(BrandRow, brand_id, with_for_update=True)
    if row is None:
        raise NotFound("no such brand", field="brand")
    plain = msgspec.to_builtins(policy)
    if (row.settings or {}).get(SETTINGS_KEY) == plain:
        return False
    row.settings = {**(row.settings or {}), SETTINGS_KEY: plain}
    await session.flush()
    await bump_config_version(session, brand_id)
    return True
