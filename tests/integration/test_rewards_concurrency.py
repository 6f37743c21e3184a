"""Concurrent redemptions on the real PostgreSQL: stock, points and codes hold under contention."""

import asyncio
from collections import Counter
from datetime import UTC, datetime

import msgspec
import pytest

from engine.errors import InsufficientPoints, QuestlineError
from rewards import service
from rewards.models import OutOfStock, RewardSpec
from tests.integration.ledger_helpers import earn, figures, member

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.fixture
def backend():
    """Only the PostgreSQL half: SQLite has one writer, so nothing runs concurrently there."""
    return "postgres+redis"


async def _put(db, brand, **fields):
    plain = {"key": "r", "name": {"en": "Reward"}, "cost": 60, "type": "product", **fields}
    async with db.write() as session:
        await service.put_reward(session, brand_id=brand.id, spec=msgspec.convert(plain, RewardSpec), now=T0)


async def _attempt(db, brand, m, idem):
    try:
        async with db.write() as session:
            return await service.redeem(session, brand, member=m, reward_key="r", idempotency_key=idem, now=T0)
    except QuestlineError as exc:
        return exc


async def test_fifty_concurrent_redemptions_of_a_stock_of_ten(db, brand):
    b = brand.brand
    await _put(db, b, stock=10)
    members = [await member(db, b, f"m{i}", T0) for i in range(50)]
    for m in members:
        await earn(db, b, m.id, 100, T0)
    outcomes = await asyncio.gather(*(_attempt(db, b, m, "once") for m in members))
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"RedeemOutcome": 10, "OutOfStock": 40}
    assert all(isinstance(o, OutOfStock) and o.status == 409 for o in outcomes if not hasattr(o, "redemption"))
    spent = [(await figures(db, b, m.id)).available for m in members]
    assert sorted(Counter(spent).items()) == [(40, 10), (100, 40)]  # refused redemptions kept their points


async def test_two_concurrent_redemptions_beyond_the_balance_one_succeeds(db, brand):
    b = brand.brand
    await _put(db, b)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    outcomes = await asyncio.gather(_attempt(db, b, m, "a"), _attempt(db, b, m, "b"))
    assert sorted(type(o).__name__ for o in outcomes) == ["InsufficientPoints", "RedeemOutcome"]
    assert any(isinstance(o, InsufficientPoints) for o in outcomes)
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_spent) == (40, 60)


async def test_a_code_is_never_issued_twice(db, brand):
    b = brand.brand
    await _put(db, b, type="voucher", codes={"source": "pool"}, cost=10)
    async with db.write() as session:
        await service.import_codes(
            session, brand_id=b.id, reward_key="r", csv_text="\n".join(f"C{i:03d}" for i in range(20)), now=T0
        )
    members = [await member(db, b, f"m{i}", T0) for i in range(30)]
    for m in members:
        await earn(db, b, m.id, 100, T0)
    outcomes = await asyncio.gather(*(_attempt(db, b, m, "x") for m in members))
    codes = [o.redemption.code for o in outcomes if hasattr(o, "redemption")]
    assert len(codes) == 20 and len(set(codes)) == 20
    assert sum(isinstance(o, OutOfStock) for o in outcomes) == 10
