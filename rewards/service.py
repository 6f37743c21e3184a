"""Rewards use cases: catalog definitions, code pools, redeem, use and cancel (each in the caller's transaction).

A redemption is one transaction: the redemption row (its idempotency key is unique), the member's
points (the balance row is locked first, so the per-member limit is counted under it, and its CHECK
forbids an overdraft), the stock counter (a conditional update under ``CHECK (issued <= total)``) and
the code (``SKIP LOCKED`` on PostgreSQL). Any refusal raises, and the caller's transaction rolls
everything back. Effects go out as outbox rows (webhooks) and are returned for the response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import insert

from engine import balances, lots, metrics, point_views
from engine.effects import Notification
from engine.errors import Conflict, ValidationError
from engine.orm import OutboxRow
from engine.pipeline import outbox_row
from engine.predicates import segments_used, with_segments
from rewards import repository as repo
from rewards.models import (
    CatalogEntry,
    CodePoolStatus,
    LimitReached,
    NotRedeemable,
    OutOfStock,
    Redemption,
    RedemptionState,
    RedemptionStatus,
    Reward,
    RewardSpec,
    build_reward,
)
from rewards.rules import crossed_low, eligible, generate_code, limit_window, parse_codes, unavailable_reason

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import SegmentMembership
    from engine.ids import BrandId, MemberId
    from engine.members import Member
    from engine.tenants import Brand
    from rewards.orm import RewardRow

OUTBOX = cast("Table", OutboxRow.__table__)
GENERATE_ATTEMPTS = 8


class RedeemOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A redemption and what it caused; ``created`` is false when the idempotency key was seen before."""

    redemption: Redemption
    created: bool = True
    effects: list[Notification] = []


async def put_reward(session: AsyncSession, *, brand_id: BrandId, spec: RewardSpec, now: datetime) -> Reward:
    """Create or replace a catalog entry (validated first); past redemptions keep the cost they paid."""
    reward = build_reward(spec)
    await repo.upsert_reward(session, brand_id=brand_id, spec=spec, now=now)
    return reward


async def import_codes(
    session: AsyncSession, *, brand_id: BrandId, reward_key: str, csv_text: str, now: datetime
) -> CodePoolStatus:
    """Add the codes of a CSV upload to the reward's pool (repeats skipped)."""
    row = await repo.reward_row(session, brand_id=brand_id, key=reward_key)
    codes = parse_codes(csv_text)
    added = await repo.add_codes(session, brand_id=brand_id, reward_id=row.id, codes=codes, now=now)
    available = await repo.codes_available(session, reward_id=row.id)
    return CodePoolStatus(added=added, duplicates=len(codes) - added, available=available)


async def generate_codes(
    session: AsyncSession, *, brand_id: BrandId, reward_key: str, count: int, now: datetime
) -> CodePoolStatus:
    """Fill the reward's pool with ``count`` codes made from its pattern (an alternative to generating at redemption)."""
    row = await repo.reward_row(session, brand_id=brand_id, key=reward_key)
    reward = repo.to_reward(row.spec)
    if reward.spec.codes is None or not reward.spec.codes.pattern:
        raise ValidationError("the reward has no code pattern", field="codes.pattern")
    if not 1 <= count <= 100_000:
        raise ValidationError("generate between 1 and 100000 codes", field="count")
    codes = list(dict.fromkeys(generate_code(reward.spec.codes.pattern) for _ in range(count)))
    added = await repo.add_codes(session, brand_id=brand_id, reward_id=row.id, codes=codes, now=now)
    return CodePoolStatus(
        added=added, duplicates=count - added, available=await repo.codes_available(session, reward_id=row.id)
    )


async def _outbox(session: AsyncSession, brand_id: BrandId, effects: list[Notification], now: datetime) -> None:
    if effects:
        await session.execute(
            insert(OUTBOX), [outbox_row(brand_id=brand_id, topic=e.topic, data=dict(e.data), now=now) for e in effects]
        )


async def member_view(
    session: AsyncSession, brand: Brand, *, member: Member, rewards: list[Reward],
    segments: SegmentMembership | None, now: datetime,
) -> Mapping[str, Any]:  # fmt: skip
    """The member's predicate view, with their segments when an eligibility of ``rewards`` names one."""
    view = member.predicate_view
    if segments is None or not set().union(*(segments_used(r.eligibility) for r in rewards)):
        return view
    held = await segments(session, brand=brand, member_ids=[member.id], now=now)
    return with_segments(view, held.get(member.id, frozenset()))


async def _check_redeemable(
    session: AsyncSession,
    brand: Brand,
    *,
    member: Member,
    view: Mapping[str, Any],
    row: RewardRow,
    reward: Reward,
    redemption_id: int,
    now: datetime,
) -> None:
    reason = unavailable_reason(reward, now)
    if reason:
        raise NotRedeemable(f"reward {reward.key!r} cannot be redeemed now ({reason})", field="reward")
    if not eligible(reward, view):
        raise NotRedeemable(f"reward {reward.key!r} is not available to this member (ineligible)", field="reward")
    limit = reward.spec.limit
    if limit is not None:
        start, end = limit_window(limit, now, brand.tz)
        count = await repo.count_redemptions(
            session, member_id=member.id, reward_id=row.id, start=start, end=end, excluding=redemption_id
        )
        if count >= limit.count:
            raise LimitReached(f"at most {limit.count} per member ({limit.period})", field="reward")


async def _assign_code(
    session: AsyncSession, brand: Brand, *, row: RewardRow, reward: Reward, redemption_id: int, now: datetime
) -> tuple[str | None, list[Notification]]:
    codes = reward.spec.codes
    if codes is None:
        return None, []
    if codes.source == "pattern":
        for _ in range(GENERATE_ATTEMPTS):
            code = generate_code(codes.pattern)
            if await repo.new_code(
                session, brand_id=brand.id, reward_id=row.id, redemption_id=redemption_id, code=code, now=now
            ):
                return code, []
        raise Conflict("could not generate a fresh code; widen the pattern", field="codes.pattern")
    taken = await repo.take_code(session, reward_id=row.id, redemption_id=redemption_id)
    if taken is None:
        raise OutOfStock(f"no codes left for reward {reward.key!r}", field="reward")
    effects: list[Notification] = []
    if codes.low_stock_at is not None:
        left = await repo.codes_available(session, reward_id=row.id)
        if crossed_low(left + 1, left, codes.low_stock_at):
            effects.append(Notification(topic="reward.low_stock", data={"reward": reward.key, "codes_left": left}))
    return taken, effects


async def redeem(
    session: AsyncSession, brand: Brand, *, member: Member, reward_key: str, idempotency_key: str, now: datetime,
    segments: SegmentMembership | None = None,
) -> RedeemOutcome:  # fmt: skip
    """Redeem a reward for the member: points, stock, limit and code in the caller's one transaction.

    A repeated ``idempotency_key`` answers the first redemption (``created=False``) and changes nothing.

    Raises:
        NotFound: no such reward.
        ValidationError: the idempotency key was used for another reward.
        NotRedeemable, LimitReached, OutOfStock, InsufficientPoints: refused (409); nothing is written.
    """
    row = await repo.reward_row(session, brand_id=brand.id, key=reward_key)
    reward = repo.to_reward(row.spec)
    claimed = await repo.claim(
        session, brand_id=brand.id, member_id=member.id, reward=row, idempotency_key=idempotency_key, now=now
    )
    if claimed is None:
        first, external_id = await repo.by_key(
            session, brand_id=brand.id, member_id=member.id, idempotency_key=idempotency_key
        )
        if first.reward_key != reward_key:
            raise ValidationError("this idempotency key was used for another reward", field="idempotency_key")
        return RedeemOutcome(redemption=repo.to_redemption(first, external_id), created=False)
    redemption_id, public_id = claimed
    # The member's balance row is locked first: their concurrent redemptions queue here, so the limit
    # count below sees the ones committed before it.
    await balances.lock(session, brand_id=brand.id, member_id=member.id, now=now)
    view = await member_view(session, brand, member=member, rewards=[reward], segments=segments, now=now)
    await _check_redeemable(
        session, brand, member=member, view=view, row=row, reward=reward, redemption_id=redemption_id, now=now
    )
    cost = reward.spec.cost
    spent = await lots.spend(
        session, brand, member_id=member.id, points=cost, source="redemption", key=reward.key, now=now,
        reason=f"redemption {redemption_id}", locked=True,
    )  # fmt: skip
    code, effects = await _assign_code(session, brand, row=row, reward=reward, redemption_id=redemption_id, now=now)
    await repo.set_fields(session, redemption_id=redemption_id, code=code, spend_entry_id=spent.entry_id, cost=cost)
    # The stock counter is one row every redemption of the reward updates: taken last, so its lock is held
    # only for the outbox insert and the commit.
    stock = await repo.take_stock(session, reward_id=row.id)
    if stock is None:
        raise OutOfStock(f"reward {reward.key!r} is out of stock", field="reward")
    total, issued = stock
    if total is not None and crossed_low(total - issued + 1, total - issued, reward.spec.low_stock_at):
        effects.append(
            Notification(topic="reward.low_stock", data={"reward": reward.key, "stock_left": total - issued})
        )
    redemption = Redemption(
        id=public_id, reward=reward.key, member=member.external_id, name=dict(reward.spec.name), cost=cost,
        code=code, status=RedemptionStatus.ISSUED, issued_at=now,
    )  # fmt: skip
    effects = [
        Notification(
            topic="reward.redeemed",
            data={
                "member": member.external_id,
                "redemption": redemption.id,
                "reward": reward.key,
                "cost": cost,
                "code": code,
            },
        ),
        Notification(
            topic="points.spent",
            data={"member": member.external_id, "points": cost, "reward": reward.key, "redemption": redemption.id},
        ),
        *effects,
    ]
    await _outbox(session, brand.id, effects, now)
    metrics.count_on_commit(session, metrics.REDEMPTIONS, brand)
    metrics.count_on_commit(session, metrics.POINTS_SPENT, brand, amount=cost)
    return RedeemOutcome(redemption=redemption, effects=effects)


async def use(session: AsyncSession, brand: Brand, *, redemption_id: str, now: datetime) -> RedeemOutcome:
    """Mark an issued redemption used (at the till).

    Raises:
        NotFound: no such redemption.
        RedemptionState: it is not ``issued``.
    """
    row, external_id = await repo.lock_redemption(session, brand_id=brand.id, public_id=redemption_id)
    if row.status != RedemptionStatus.ISSUED:
        raise RedemptionState(f"the redemption is {row.status}, not issued", field="redemption")
    await repo.set_fields(session, redemption_id=row.id, status=RedemptionStatus.USED.value, used_at=now)
    row.status, row.used_at = RedemptionStatus.USED.value, now
    effects = [
        Notification(
            topic="redemption.used", data={"member": external_id, "redemption": row.public_id, "reward": row.reward_key}
        )
    ]
    await _outbox(session, brand.id, effects, now)
    return RedeemOutcome(redemption=repo.to_redemption(row, external_id), effects=effects)


async def cancel(
    session: AsyncSession, brand: Brand, *, redemption_id: str, now: datetime, reason: str = ""
) -> RedeemOutcome:
    """Cancel an issued redemption: refund its points, give back its stock and code.

    The points come back as new lots, one per lot the redemption took, each keeping that lot's expiry.
    A refund whose date has already passed arrives expired: it is written and expired at once (a
    ``points.expired`` notice goes out), so the redemption reads ``refund: expired``.

    Raises:
        NotFound: no such redemption.
        RedemptionState: it is not ``issued`` (a used redemption cannot be cancelled).
    """
    row, external_id = await repo.lock_redemption(session, brand_id=brand.id, public_id=redemption_id)
    if row.status != RedemptionStatus.ISSUED:
        raise RedemptionState(f"the redemption is {row.status}, not issued", field="redemption")
    member_id = cast("MemberId", row.member_id)
    await balances.lock(session, brand_id=brand.id, member_id=member_id, now=now)
    taken = await lots.spend_allocations(session, entry_id=row.spend_entry_id) if row.spend_entry_id else []
    for _, points, expires in taken:
        await lots.earn(
            session, brand, member_id=member_id, points=points, source="refund", key=row.reward_key,
            occurred_at=now, now=now, reason=f"cancelled redemption {row.public_id}", expires_at=expires,
        )  # fmt: skip
    outcome = await lots.settle_member(session, brand, member_id=member_id, now=now)
    lapsed = sum(points for _, points, expires in taken if expires is not None and expires <= now)
    refund = "expired" if taken and lapsed == row.cost else "partly_expired" if lapsed else "refunded"
    await repo.give_back_stock(session, reward_id=row.reward_id)
    await repo.give_back_code(session, redemption_id=row.id)
    values: dict[str, Any] = {
        "status": RedemptionStatus.CANCELLED.value,
        "cancelled_at": now,
        "refund": refund,
        "reason": reason,
    }
    await repo.set_fields(session, redemption_id=row.id, **values)
    for name, value in values.items():
        setattr(row, name, value)
    effects = [
        Notification(
            topic="redemption.cancelled",
            data={"member": external_id, "redemption": row.public_id, "reward": row.reward_key,
                  "refunded": row.cost - lapsed, "expired": max(lapsed, 0), "settled_expired": outcome.expired},
        )
    ]  # fmt: skip
    await _outbox(session, brand.id, effects, now)
    return RedeemOutcome(redemption=repo.to_redemption(row, external_id), effects=effects)


async def catalog(
    session: AsyncSession, brand: Brand, *, member: Member | None, now: datetime, include_hidden: bool = False,
    segments: SegmentMembership | None = None,
) -> list[CatalogEntry]:  # fmt: skip
    """The catalog as a member sees it (what they can afford, how many points are missing), by key."""
    have = (
        await point_views.available(session, brand_id=brand.id, member_id=member.id, now=now)
        if member is not None
        else 0
    )
    entries: list[CatalogEntry] = []
    listed = await repo.list_rewards(session, brand_id=brand.id)
    view = (
        await member_view(session, brand, member=member, rewards=[r for _, r, _ in listed], segments=segments, now=now)
        if member is not None
        else {}
    )
    for _, reward, left in listed:
        if not reward.spec.visible and not include_hidden:
            continue
        reason = unavailable_reason(reward, now)
        if not reason and member is not None and not eligible(reward, view):
            reason = "ineligible"
        if not reason and left is not None and left <= 0:
            reason = "out_of_stock"
        missing = max(reward.spec.cost - have, 0)
        if not reason and missing:
            reason = "points"
        entries.append(
            CatalogEntry(
                reward=reward.spec,
                remaining=left,
                affordable=missing == 0,
                missing_points=missing,
                redeemable=not reason,
                reason=reason,
            )
        )
    return entries
