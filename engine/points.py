"""The points ledger and earning rules: SQL side.

The ledger is append-only: entries are inserted, never updated or deleted; a correction is a new entry.
Earnings are lots and spends consume them (:mod:`engine.lots`); each member's ``point_balances`` row is
kept in step in the same transaction, and its CHECK forbids an overdraft. Earning rules (stored by
:mod:`engine.rules_store`) are cached per brand by the brand's ``config_version``, which every definition
change bumps in the same transaction.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, cast

import msgspec
from sqlalchemy import BigInteger, Date, String, bindparam, func, select

from engine import balances, lots, metrics, point_views, publishing, rules_store
from engine.cache import BrandCache
from engine.db import batches, on_postgres, where_in_lists
from engine.earning import evaluate
from engine.effects import PointsAwarded
from engine.errors import ValidationError
from engine.ids import MemberId
from engine.ledger import RELEASE
from engine.orm import LedgerRow
from engine.periods import local_day
from engine.tenants import get_brand_by_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.earning import EarningRule
    from engine.grants import TierMultipliers
    from engine.ids import BrandId
    from engine.pipeline import UnitOfWork

MAX_ADJUSTMENT = 1_000_000_000


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a member's points history."""

    id: int
    points: int
    source: str
    key: str
    reason: str
    event: str | None
    occurred_at: datetime
    kind: str = "earn"
    """``earn`` (a lot), ``spend``, ``expire``, ``cancel``, ``release`` (pending points became available)."""
    expires_at: datetime | None = None
    """Lots only: when what is left of them expires."""


class PointsSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A member's balance and a page of history, newest first."""

    member: str
    balance: int
    entries: list[LedgerEntry]
    next_before: int | None
    """Pass as ``before`` to get the next (older) page; ``None`` at the end."""


class Adjustment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A manual correction posted by the brand."""

    points: Annotated[int, msgspec.Meta(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class PointsProcessor:
    """The pipeline step that applies earning rules to each new event."""

    name = "points"

    def __init__(self, *, tier_multipliers: TierMultipliers | None = None) -> None:
        self.cache: BrandCache[tuple[EarningRule, ...]] = BrandCache()
        self._tier_multipliers = tier_multipliers

    async def process(self, uow: UnitOfWork) -> None:
        """Evaluate the brand's earning rules on every new event, in order, honouring daily caps."""
        brand_id = uow.brand.id
        rules = await self.cache.get(
            brand_id, await uow.config_version(), lambda: rules_store.load_rules(uow.session, brand_id)
        )
        if not rules:
            return
        tz = uow.tz
        capped: dict[str, list[str]] = {}  # event type → keys of its rules with a daily cap
        for rule in rules:
            if rule.daily_cap is not None:
                capped.setdefault(rule.event_type, []).append(rule.key)
        earned: dict[tuple[MemberId, str, date], int] = {}
        if capped:
            slots = {
                (c.member_id, key, local_day(c.event.occurred_at, tz))
                for c in uow.events
                if c.event.type in capped
                for key in capped[c.event.type]
            }
            earned = await points_earned_on_days(uow.session, brand_id=uow.brand.id, slots=slots)
        per_member: dict[MemberId, dict[tuple[str, date], int]] = {}
        for (member_id, key, day), total in earned.items():
            per_member.setdefault(member_id, {})[(key, day)] = total
        factors: Mapping[str, float] = {}
        if self._tier_multipliers is not None:
            factors = await self._tier_multipliers(uow.session, brand=uow.brand, version=await uow.config_version())
        held = {r.key: timedelta(days=r.holding_days) for r in rules if r.holding_days}
        holding: dict[tuple[int, str], timedelta] = uow.stash.setdefault(lots.HOLDING_STASH, {})
        by_type: dict[str, tuple[EarningRule, ...]] = {}  # each event is evaluated against its type's rules only
        for rule in rules:
            if rule.active:
                by_type[rule.event_type] = (*by_type.get(rule.event_type, ()), rule)
        for ctx in uow.events:
            typed = by_type.get(ctx.event.type)
            if typed is None:
                continue
            path = f"$.events[{ctx.index}].properties"
            for effect in evaluate(
                typed,
                ctx.event,
                ctx.member,
                tz=tz,
                earned_today=per_member.setdefault(ctx.member_id, {}),
                path=path,
                tier_factor=factors.get(str(ctx.member.get("tier") or ""), 1.0) if factors else 1.0,
            ):
                if effect.key in held:
                    holding[(ctx.index, effect.key)] = held[effect.key]
                ctx.emit(effect)

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update."""


async def balance(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, now: datetime | None = None) -> int:
    """The member's available (spendable) points.

    With ``now``, exact at that instant (held lots whose time came count, lots whose date passed do not);
    without it, the balance row as the last write or job left it. Pending points are not included: see
    :func:`engine.point_views.points_view` for pending and expiring points.
    """
    if now is not None:
        return await point_views.available(session, brand_id=brand_id, member_id=member_id, now=now)
    return (await balances.stored(session, brand_id=brand_id, member_id=member_id)).available


async def history(
    session: AsyncSession, *, brand_id: BrandId, member_id: MemberId, limit: int, before: int | None
) -> tuple[list[LedgerEntry], int | None]:
    """A page of the member's ledger (without release entries), newest first; returns the entries and the next cursor."""
    # Release entries (0 points: pending points became available) are bookkeeping; the export keeps them.
    query = select(LedgerRow).where(
        LedgerRow.brand_id == brand_id, LedgerRow.member_id == member_id, LedgerRow.kind != RELEASE
    )
    if before is not None:
        query = query.where(LedgerRow.id < before)
    rows = list(await session.scalars(query.order_by(LedgerRow.id.desc()).limit(limit + 1)))
    entries = [
        LedgerEntry(
            id=r.id,
            points=r.points,
            source=r.source,
            key=r.key,
            reason=r.reason,
            event=r.event_key,
            occurred_at=r.occurred_at,
            kind=r.kind,
            expires_at=r.expires_at,
        )
        for r in rows[:limit]
    ]
    return entries, (entries[-1].id if len(rows) > limit else None)


async def all_entries(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[LedgerEntry]:
    """Every ledger entry of the member, oldest first (for a data export)."""
    rows = await session.scalars(
        select(LedgerRow).where(LedgerRow.brand_id == brand_id, LedgerRow.member_id == member_id).order_by(LedgerRow.id)
    )
    return [
        LedgerEntry(
            id=r.id,
            points=r.points,
            source=r.source,
            key=r.key,
            reason=r.reason,
            event=r.event_key,
            occurred_at=r.occurred_at,
            kind=r.kind,
            expires_at=r.expires_at,
        )
        for r in rows
    ]


async def post_entry(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_id: MemberId,
    points: int,
    source: str,
    key: str,
    reason: str,
    occurred_at: datetime,
    tz: ZoneInfo,
    now: datetime,
    event_key: str | None = None,
) -> None:
    """Append one ledger entry (adjustments and rewards no event carries) and keep the balance row in step.

    A positive entry is a lot (available at once, dated by the brand's expiry policy); a negative one
    spends the member's lots first-expiring-first.

    Raises:
        ValidationError: zero points.
        InsufficientPoints: a negative entry beyond the member's available points (nothing is written).
    """
    if points == 0:
        raise ValidationError("an entry of zero points changes nothing", field="points")
    brand = await get_brand_by_id(session, brand_id)
    if brand.timezone != str(tz):
        brand = msgspec.structs.replace(brand, timezone=str(tz))
    common: dict[str, Any] = {"member_id": member_id, "source": source, "key": key, "reason": reason, "now": now}
    if points > 0:
        await lots.earn(session, brand, points=points, occurred_at=occurred_at, event_key=event_key, **common)
        metrics.count_on_commit(session, metrics.POINTS_AWARDED, brand, source, amount=points)
    else:
        await lots.spend(session, brand, points=-points, occurred_at=occurred_at, event_key=event_key, **common)
        metrics.count_on_commit(session, metrics.POINTS_ADJUSTED, brand, amount=-points)
    if source == "adjustment":
        await publishing.publish_adjustment(
            session, brand_id=brand_id, member_id=member_id, points=points, key=key, reason=reason, now=now
        )


def adjustment_effect(points: int) -> PointsAwarded:
    """The effect a manual adjustment reports."""
    return PointsAwarded(points=points, source="adjustment", key="manual")


_EARNED_IN_LISTS = where_in_lists(  # SQLite (PostgreSQL: _EARNED)
    select(LedgerRow.member_id, LedgerRow.key, LedgerRow.local_day, func.sum(LedgerRow.points))
    .where(LedgerRow.brand_id == bindparam("brand_id"), LedgerRow.source == "rule")
    .group_by(LedgerRow.member_id, LedgerRow.key, LedgerRow.local_day),
    (LedgerRow.member_id, "members", BigInteger()),
    (LedgerRow.key, "keys", String()),
    (LedgerRow.local_day, "days", Date()),
)
_EARNED = (
    "SELECT s.member_id, s.key, s.day, l.total FROM unnest($1::bigint[], $2::varchar[], $3::date[])"
    " AS s(member_id, key, day) CROSS JOIN LATERAL (SELECT sum(ledger.points)::bigint AS total FROM ledger"
    " WHERE ledger.brand_id = $4 AND ledger.member_id = s.member_id AND ledger.key = s.key"
    " AND ledger.local_day = s.day AND ledger.source = 'rule') AS l WHERE l.total IS NOT NULL"
)
"""PostgreSQL: the caps read, one probe per (member, rule key, local day) the unit's events need, by the driver.

Once the statistics know the ledger, each probe is an equality on every column of ``ix_ledger_cap`` (brand,
member, key, day): it reads only the rows it sums, however long the member's history (a probe per member
filtered the member's whole ledger, which grew with every event). While the statistics predate the brand,
the plan may probe by (brand, member) instead: still by member, never the brand's rows
(tests/integration/test_unit_plans.py checks both). The driver runs it (``$1``…, no SQLAlchemy statement):
a 1000-event unit reads up to a thousand sums under its members' locks, whose SQLAlchemy result rows cost
about 5 ms of Python there."""


async def points_earned_on_days(
    session: AsyncSession, *, brand_id: BrandId, slots: set[tuple[MemberId, str, date]]
) -> dict[tuple[MemberId, str, date], int]:
    """Points each member already earned from a rule on a local day, for daily caps, by (member, rule key, day).

    ``slots`` are the (member, rule key, local day) to read; one earned nothing is left out.
    """
    if not slots:
        return {}
    if on_postgres(session):
        ordered = sorted(slots)
        columns = ([slot[0] for slot in ordered], [slot[1] for slot in ordered], [slot[2] for slot in ordered])
        connection = await session.connection()
        driver_rows = cast(
            "list[tuple[Any, ...]]", (await connection.exec_driver_sql(_EARNED, (*columns, brand_id))).all()
        )
        return {(row[0], row[1], row[2]): row[3] for row in driver_rows}
    found: dict[tuple[MemberId, str, date], int] = {}
    keys = sorted({slot[1] for slot in slots})
    days = sorted({slot[2] for slot in slots})
    for chunk in batches(session, sorted({slot[0] for slot in slots})):  # SQLite: IN lists, a superset of the slots
        params = {"brand_id": brand_id, "members": chunk, "keys": keys, "days": days}
        rows = await session.execute(_EARNED_IN_LISTS.other, params)
        found.update(((MemberId(m), k, d), int(total)) for m, k, d, total in rows)
    return found
