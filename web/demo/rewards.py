"""The demo brand's points economy: an expiry policy, a small catalog (voucher pool, discount, donation…), a redemption."""

from __future__ import annotations

import random

from engine import settlement
from engine.errors import Conflict
from engine.expiry import Calendar, PointsPolicy
from engine.members import get_member
from engine.tenants import Brand
from rewards import service as rewards_service
from rewards.models import Codes, Discount, MemberLimit, RewardSpec, RewardType
from web.deps import Services

#: Points expire at the end of the month after the one they were earned in (so the demo has some expiring).
DEMO_POLICY = PointsPolicy(expiry=Calendar(count=1, unit="month"), notice_days=[30, 7])

DEMO_REWARDS: list[RewardSpec] = [
    RewardSpec(
        key="voucher-5",
        name={"en": "€5 voucher", "it": "Buono da 5 €"},
        description={"en": "€5 off any order, in store or online.", "it": "5 € di sconto su qualsiasi ordine."},
        cost=150,
        type=RewardType.VOUCHER,
        codes=Codes(source="pool", low_stock_at=5),
        stock=40,
    ),
    RewardSpec(
        key="ten-off",
        name={"en": "10% off your next order", "it": "10% di sconto sul prossimo ordine"},
        cost=100,
        type=RewardType.DISCOUNT,
        discount=Discount(kind="percent", value=10),
        codes=Codes(source="pattern", pattern="CAFE-XXXX-##"),
        limit=MemberLimit(count=1, period="month"),
    ),
    RewardSpec(
        key="cappuccino",
        name={"en": "Free cappuccino", "it": "Cappuccino gratis"},
        cost=60,
        type=RewardType.PRODUCT,
        limit=MemberLimit(count=1, period="week"),
    ),
    RewardSpec(
        key="plant-a-tree",
        name={"en": "Plant a tree", "it": "Pianta un albero"},
        description={"en": "We plant a tree with our partner for you.", "it": "Piantiamo un albero per te."},
        cost=50,
        type=RewardType.DONATION,
    ),
    RewardSpec(
        key="masterclass",
        name={"en": "Barista masterclass", "it": "Masterclass da barista"},
        cost=1500,
        type=RewardType.EXPERIENCE,
        stock=5,
    ),
]


def pool_codes(count: int = 30) -> str:
    """A CSV of voucher codes, the same on every run."""
    rng = random.Random(11)
    return "code\n" + "\n".join(f"V5-{rng.randrange(16**6):06X}" for _ in range(count))


async def seed_demo(services: Services, brand: Brand) -> None:
    """The expiry policy (before any points are earned) and the catalog with its voucher pool."""
    now = services.clock.now()
    await settlement.save_policy(services.db, brand_id=brand.id, policy=DEMO_POLICY)
    async with services.db.write() as session:
        for spec in DEMO_REWARDS:
            await rewards_service.put_reward(session, brand_id=brand.id, spec=spec, now=now)
        await rewards_service.import_codes(
            session, brand_id=brand.id, reward_key="voucher-5", csv_text=pool_codes(), now=now
        )


async def redeem_demo(services: Services, brand: Brand) -> None:
    """A few redemptions once members have points (after the events), so the console has some to show."""
    now = services.clock.now()
    redemptions = (
        ("m-giulia", "voucher-5"),
        ("m-giulia", "cappuccino"),
        ("m-marco", "plant-a-tree"),
        ("m-sofia", "ten-off"),
    )
    for member_id, reward in redemptions:
        try:
            async with services.db.write() as session:
                member = await get_member(session, brand_id=brand.id, external_id=member_id)
                await rewards_service.redeem(
                    session, brand, member=member, reward_key=reward, idempotency_key=f"demo-{reward}", now=now
                )
        except Conflict:  # a member short of points simply does not redeem in the demo
            continue
