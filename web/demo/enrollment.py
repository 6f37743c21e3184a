"""The demo brand's joining and referral program: a welcome bonus and a bring-a-friend reward."""

from __future__ import annotations

from engine.earning import EarningRuleSpec
from engine.rules_store import put_rule
from engine.tenants import Brand
from enrollment.service import ENROLLED
from referrals import service as referrals
from web.deps import Services

WELCOME_POINTS = 100
#: A friend qualifies with their first purchase of at least 5 euros; the referrer gets 200, the friend 100.
REFERRAL_POLICY = referrals.ReferralPolicy(
    event="purchase",
    filter={"field": "properties.amount", "gte": 5},
    referrer_points=200,
    friend_points=100,
    monthly_cap=10,
)


async def seed_demo(services: Services, brand: Brand) -> None:
    """A ``member.enrolled`` welcome-bonus rule and the referral policy."""
    now = services.clock.now()
    await put_rule(
        services.db,
        brand_id=brand.id,
        spec=EarningRuleSpec(
            key="welcome",
            event_type=ENROLLED,
            points=WELCOME_POINTS,
            description="Welcome bonus for joining (paid once: the event id is derived from the member)",
        ),
        now=now,
    )
    async with services.db.write() as session:
        await referrals.save_policy(session, brand_id=brand.id, policy=REFERRAL_POLICY)
