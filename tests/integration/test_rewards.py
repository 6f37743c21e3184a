"""Rewards on both backends: catalog, redemption in one transaction, codes, limits, use and cancel, liability."""

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import event as sa_event

from engine.errors import Conflict, InsufficientPoints, ValidationError
from engine.orm import LedgerRow
from rewards import service
from rewards.liability import liability
from rewards.models import LimitReached, NotRedeemable, OutOfStock, RedemptionState, RewardSpec
from rewards.orm import RedemptionRow
from rewards.repository import list_redemptions
from tests.integration.ledger_helpers import count, earn, entries_of, figures, member, replayed, topics, with_policy

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def spec(key: str = "coffee", **overrides) -> RewardSpec:
    plain = {"key": key, "name": {"en": "Free coffee", "it": "Caffè gratis"}, "cost": 60, "type": "product"}
    return msgspec.convert({**plain, **overrides}, RewardSpec)


async def put(db, brand, reward: RewardSpec, now=T0):
    async with db.write() as session:
        return await service.put_reward(session, brand_id=brand.id, spec=reward, now=now)


async def redeem(db, brand, m, key="coffee", idem="k1", now=T0):
    async with db.write() as session:
        return await service.redeem(session, brand, member=m, reward_key=key, idempotency_key=idem, now=now)


async def test_redeem_spends_points_takes_stock_and_a_code_once(db, brand):
    b = brand.brand
    await put(db, b, spec("voucher", type="voucher", stock=5, codes={"source": "pool"}))
    async with db.write() as session:
        pool = await service.import_codes(
            session, brand_id=b.id, reward_key="voucher", csv_text="code\nAAA-1\nAAA-2\nAAA-1\n\n", now=T0
        )
    assert (pool.added, pool.duplicates, pool.available) == (2, 0, 2)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 150, T0)
    first = await redeem(db, b, m, key="voucher")
    again = await redeem(db, b, m, key="voucher")  # a retried request: same answer, nothing new
    assert first.created and not again.created
    assert first.redemption == again.redemption
    assert (first.redemption.code, first.redemption.status, first.redemption.cost) == ("AAA-1", "issued", 60)
    assert (await figures(db, b, m.id)).available == 90
    assert await count(db, RedemptionRow, member_id=m.id) == 1
    assert [t for t, _ in await topics(db, b)] == ["reward.redeemed", "points.spent"]
    second = await redeem(db, b, m, key="voucher", idem="k2")
    assert second.redemption.code == "AAA-2"
    await put(db, b, spec("tea"))
    with pytest.raises(ValidationError):
        await redeem(db, b, m, key="tea", idem="k1")  # the key was used for another reward
    async with db.read() as session:
        listed = await list_redemptions(session, brand_id=b.id, member_id=m.id)
    assert [r.code for _, r in listed] == ["AAA-2", "AAA-1"]


async def test_a_redemption_is_one_lock_and_no_needless_reads(db, brand):
    """The hot path of a pooled voucher: one balance-row lock, no last-activity read outside the inactivity policy."""
    b = brand.brand
    await put(db, b, spec(type="voucher", codes={"source": "pool"}, stock=10))
    async with db.write() as session:
        await service.import_codes(session, brand_id=b.id, reward_key="coffee", csv_text="A\nB\n", now=T0)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(" ".join(statement.split()))

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        await redeem(db, b, m)
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    touched = [s for s in seen if s.startswith("UPDATE point_balances")]
    assert len(touched) == 2  # the lock, then the debit (the spend does not lock the row again)
    assert not [s for s in seen if "last_activity_at" in s and s.startswith("SELECT")]
    assert len(seen) == 12, seen  # reward, claim, lock, lots, spend + allocation, debit, code x2, fields, stock, outbox


async def test_refusals_write_nothing(db, brand):
    b = brand.brand
    await put(db, b, spec(stock=1))
    poor = await member(db, b, "poor", T0)
    await earn(db, b, poor.id, 59, T0)
    with pytest.raises(InsufficientPoints):
        await redeem(db, b, poor)
    assert await count(db, RedemptionRow, member_id=poor.id) == 0
    assert (await figures(db, b, poor.id)).available == 59
    rich = await member(db, b, "rich", T0)
    await earn(db, b, rich.id, 500, T0)
    await redeem(db, b, rich, idem="a")
    spends = len(await entries_of(db, rich.id, "spend"))
    with pytest.raises(OutOfStock):
        await redeem(db, b, rich, idem="b")
    assert len(await entries_of(db, rich.id, "spend")) == spends
    assert (await figures(db, b, rich.id)).available == 440


async def test_limits_windows_eligibility_and_pause(db, brand):
    b = brand.brand
    await put(db, b, spec(limit={"count": 1, "period": "day"}, eligibility={"field": "member.tier", "eq": "gold"}))
    gold = await member(db, b, "gold", T0, tier="gold")
    silver = await member(db, b, "silver", T0, tier="silver")
    for m in (gold, silver):
        await earn(db, b, m.id, 500, T0)
    with pytest.raises(NotRedeemable):
        await redeem(db, b, silver)
    await redeem(db, b, gold, idem="1")
    with pytest.raises(LimitReached):
        await redeem(db, b, gold, idem="2")
    next_day = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 00:30 in Rome: a new local day
    await redeem(db, b, gold, idem="3", now=next_day)
    await put(db, b, spec(paused=True))
    with pytest.raises(NotRedeemable, match="paused"):
        await redeem(db, b, gold, idem="4", now=next_day + timedelta(days=1))
    await put(db, b, spec(ends_at="2026-11-25T00:00:00Z", eligibility={"field": "member.tier", "eq": "gold"}))
    with pytest.raises(NotRedeemable, match="ended"):
        await redeem(db, b, gold, idem="5", now=datetime(2026, 11, 26, tzinfo=UTC))
    async with db.read() as session:
        seen = await service.catalog(session, b, member=silver, now=T0)
    assert [(e.reward.key, e.redeemable, e.reason) for e in seen] == [("coffee", False, "ineligible")]


async def test_hidden_rewards_stay_out_of_the_members_catalog(db, brand):
    b = brand.brand
    await put(db, b, spec())
    await put(db, b, spec("staff-only", visible=False))
    m = await member(db, b, "m", T0)
    async with db.read() as session:
        seen = await service.catalog(session, b, member=m, now=T0)
        everything = await service.catalog(session, b, member=None, now=T0, include_hidden=True)
    assert [e.reward.key for e in seen] == ["coffee"]
    assert sorted(e.reward.key for e in everything) == ["coffee", "staff-only"]


async def test_cost_changes_never_touch_past_redemptions(db, brand):
    b = brand.brand
    await put(db, b, spec())
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 200, T0)
    await redeem(db, b, m, idem="a")
    await put(db, b, spec(cost=100))
    await redeem(db, b, m, idem="b")
    async with db.read() as session:
        listed = await list_redemptions(session, brand_id=b.id, member_id=m.id)
    assert [r.cost for _, r in listed] == [100, 60]
    async with db.read() as session:
        entries = await service.catalog(session, b, member=m, now=T0)
    assert (entries[0].affordable, entries[0].missing_points) == (False, 60)


async def test_generated_codes_follow_the_pattern_and_low_stock_is_announced(db, brand):
    b = brand.brand
    await put(
        db, b, spec(type="voucher", codes={"source": "pattern", "pattern": "QL-XXXX-####"}, stock=3, low_stock_at=1)
    )
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 1000, T0)
    codes = [(await redeem(db, b, m, idem=str(i))).redemption.code for i in range(3)]
    assert len(set(codes)) == 3
    assert all(c.startswith("QL-") and len(c) == 12 and c[-4:].isdigit() for c in codes)
    low = [d for t, d in await topics(db, b) if t == "reward.low_stock"]
    assert low == [{"reward": "coffee", "stock_left": 1}]


async def test_a_code_pool_falling_to_its_threshold_is_announced_once(db, brand):
    b = brand.brand
    await put(db, b, spec(type="voucher", codes={"source": "pool", "low_stock_at": 2}, cost=10))
    async with db.write() as session:
        added = await service.import_codes(
            session, brand_id=b.id, reward_key="coffee", csv_text="code\nP-1\nP-2\nP-3\nP-4\n", now=T0
        )
    assert (added.added, added.available) == (4, 4)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    codes = [(await redeem(db, b, m, idem=str(i))).redemption.code for i in range(3)]
    assert codes == ["P-1", "P-2", "P-3"]
    low = [d for t, d in await topics(db, b) if t == "reward.low_stock"]
    assert low == [{"reward": "coffee", "codes_left": 2}]  # once at the crossing, not again at 1


async def test_use_and_cancel_refund_points_stock_and_code(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 12}, "notice_days": []})
    await put(db, b, spec("voucher", type="voucher", stock=1, codes={"source": "pool"}))
    async with db.write() as session:
        await service.import_codes(session, brand_id=b.id, reward_key="voucher", csv_text="ONLY-ONE", now=T0)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 40, T0)
    await earn(db, b, m.id, 40, T0 + timedelta(days=30))
    issued = (await redeem(db, b, m, key="voucher", now=T0 + timedelta(days=30))).redemption
    async with db.write() as session:
        cancelled = await service.cancel(session, b, redemption_id=issued.id, now=T0 + timedelta(days=31))
    assert (cancelled.redemption.status, cancelled.redemption.refund) == ("cancelled", "refunded")
    refunds = [e for e in await entries_of(db, m.id, "earn") if e.source == "refund"]
    lots = [e for e in await entries_of(db, m.id, "earn") if e.source != "refund"]
    assert sorted((r.points, r.expires_at) for r in refunds) == sorted(
        [(40, lots[0].expires_at), (20, lots[1].expires_at)]
    )  # each refund keeps the date of the lot it came from
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_earned, stored.lifetime_spent) == (80, 80, 0)
    assert stored == await replayed(db, m.id)
    with pytest.raises(RedemptionState):
        async with db.write() as session:
            await service.cancel(session, b, redemption_id=issued.id, now=T0 + timedelta(days=32))
    reissued = (await redeem(db, b, m, key="voucher", idem="k2", now=T0 + timedelta(days=32))).redemption
    assert reissued.code == "ONLY-ONE"  # stock and code came back
    async with db.write() as session:
        used = await service.use(session, b, redemption_id=reissued.id, now=T0 + timedelta(days=33))
    assert used.redemption.status == "used"
    assert [t for t, _ in await topics(db, b)].count("redemption.used") == 1
    with pytest.raises(RedemptionState):
        async with db.write() as session:
            await service.cancel(session, b, redemption_id=reissued.id, now=T0 + timedelta(days=34))
    assert [t for t, _ in await topics(db, b)].count("redemption.cancelled") == 1


async def test_cancel_after_expiry_refund_arrives_expired(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 1}, "notice_days": []})
    await put(db, b, spec())
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 60, T0)
    issued = (await redeem(db, b, m)).redemption
    later = T0 + timedelta(days=40)
    async with db.write() as session:
        cancelled = await service.cancel(session, b, redemption_id=issued.id, now=later)
    assert cancelled.redemption.refund == "expired"
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_spent) == (0, 0)
    assert [e.points for e in await entries_of(db, m.id, "expire")] == [-60]
    assert "points.expired" in [t for t, _ in await topics(db, b)]
    assert stored == await replayed(db, m.id)


async def test_liability_reports_outstanding_expiries_and_redemption_rate(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "calendar", "count": 1, "unit": "month"}})
    await put(db, b, spec(cost=50))
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    await earn(db, b, m.id, 100, T0, holding=timedelta(days=14), now=T0)
    await redeem(db, b, m)
    async with db.read() as session:
        report = await liability(session, b, start=T0 - timedelta(days=1), end=T0 + timedelta(days=1), now=T0)
    assert (report.available, report.pending, report.earned, report.redeemed) == (50, 100, 200, 50)
    assert report.redemption_rate == 0.25
    assert [(x.month, x.points) for x in report.expiring] == [("2026-12", 150)]
    assert await count(db, LedgerRow, member_id=m.id) == 3


async def test_stock_cannot_drop_below_what_is_out(db, brand):
    b = brand.brand
    await put(db, b, spec(stock=3))
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 500, T0)
    await redeem(db, b, m, idem="a")
    await redeem(db, b, m, idem="b")
    with pytest.raises(Conflict):
        await put(db, b, spec(stock=1))
    await put(db, b, spec(stock=2))
    with pytest.raises(OutOfStock):
        await redeem(db, b, m, idem="c")
