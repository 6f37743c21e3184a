"""The demo brand's leaderboards (weekly points, visits per store, a best-receipt board) and a weekly league."""

from __future__ import annotations

from datetime import timedelta

from engine.tenants import Brand
from leaderboards.models import BoardSpec, EventCountMetric, PointsMetric, PropertySumMetric, Reward
from leagues import repository as leagues_repo
from leagues.models import Division, DivisionReward, LeagueSpec
from web.deps import Services


async def seed_demo(services: Services, brand: Brand) -> None:
    """Create the demo brand's boards: weekly points, purchases per store, and a best-receipt board."""
    lb = services.leaderboards
    now = services.clock.now()
    specs = [
        BoardSpec(
            key="weekly-points",
            title="Points this week",
            metric=PointsMetric(),
            period="weekly",
            rewards=[Reward(from_rank=1, to_rank=3, points=100)],
            description="Everyone's points earned this week; the top 3 get 100 bonus points on Monday.",
        ),
        BoardSpec(
            key="visits-by-store",
            title="Visits per store this month",
            metric=EventCountMetric(event_type="visit"),
            period="monthly",
            scope="store",
            ties="dense",
            display="initials",
        ),
        BoardSpec(
            key="best-receipt",
            title="Biggest receipt of the campaign",
            metric=PropertySumMetric(event_type="purchase", property="amount"),
            period="window",
            starts_at=now - timedelta(days=30),
            ends_at=now + timedelta(days=30),
            mode="best",
            ties="first_to_reach",
            decimals=2,
            display="pseudonym",
        ),
    ]
    for spec in specs:
        await lb.put_board(brand, spec)
    league = LeagueSpec(
        key="weekly-league",
        title="Weekly league",
        board="weekly-points",
        divisions=[
            Division(key="bronze", title="Bronze", rewards=[DivisionReward(from_rank=1, to_rank=3, points=20)]),
            Division(key="silver", title="Silver", rewards=[DivisionReward(from_rank=1, to_rank=3, points=50)]),
            Division(key="gold", title="Gold", rewards=[DivisionReward(from_rank=1, to_rank=1, points=200)]),
        ],
        cohort_size=30,
        promote=5,
        relegate=5,
    )
    async with services.db.write() as session:
        await leagues_repo.save_league(session, brand_id=brand.id, spec=league, now=now)
