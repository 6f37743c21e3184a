"""The demo brand's badges: rule badges (levels, repeatable, hidden), challenge and leaderboard rewards, a manual one."""

from __future__ import annotations

from badges import config as badges_config
from badges.models import BadgeSpec, LevelSpec, RuleSpec, build_badge
from engine.tenants import Brand
from web.deps import Services

DEMO_BADGES: list[BadgeSpec] = [
    BadgeSpec(
        key="first-purchase",
        name="First purchase",
        description="Your first purchase in any of our cafés.",
        category="shopping",
        icon="cart",
        rule=RuleSpec(event_type="purchase"),
        points=20,
    ),
    BadgeSpec(
        key="regular",
        name="Regular",
        description="A familiar face: visits to our cafés.",
        category="visits",
        icon="cup",
        rule=RuleSpec(event_type="visit"),
        levels=[
            LevelSpec(key="bronze", threshold=1, points=10),
            LevelSpec(key="silver", threshold=3, points=30),
            LevelSpec(key="gold", threshold=5, points=60),
        ],
    ),
    BadgeSpec(
        key="critic",
        name="Critic",
        description="Wrote thoughtful reviews (a challenge reward).",
        criteria="Complete the reviews challenge.",
        category="community",
        icon="chat",
        points=50,
    ),
    BadgeSpec(
        key="explorer",
        name="Explorer",
        description="Visited several of our cafés (a challenge reward).",
        criteria="Complete the explorer challenge: visit different stores.",
        category="visits",
        icon="pin",
        points=50,
    ),
    BadgeSpec(
        key="streak-master",
        name="Streak master",
        description="Kept a streak going; earned again with every streak (a challenge reward).",
        criteria="Complete a streak challenge.",
        category="habits",
        icon="flame",
        repeatable=True,
        points=25,
    ),
    BadgeSpec(
        key="top-reviewer",
        name="Top reviewer",
        description="Finished a leaderboard period among the top reviewers.",
        criteria="Finish a period in the top places of the reviewers' leaderboard.",
        category="leaderboards",
        icon="trophy",
        repeatable=True,
        points=100,
    ),
    BadgeSpec(
        key="survey-star",
        name="Survey star",
        description="Shared your opinion in a survey; earned again with each one.",
        category="community",
        icon="star",
        rule=RuleSpec(event_type="survey"),
        repeatable=True,
    ),
    BadgeSpec(
        key="five-star-fan",
        name="Five-star fan",
        description="A secret badge for generous reviewers.",
        category="community",
        icon="heart",
        hidden=True,
        rule=RuleSpec(event_type="review", filter={"field": "properties.stars", "eq": 5}, count=2),
    ),
    BadgeSpec(
        key="founding-member",
        name="Founding member",
        description="Granted by the team to members who were with us from the start.",
        criteria="Granted by the brand.",
        category="special",
        hidden=True,
    ),
]


async def seed_demo(services: Services, brand: Brand) -> None:
    """Create the demo badges, all with generated art.

    Rule badges (one with levels, one repeatable, one hidden), challenge rewards, a leaderboard reward and a
    manual one.
    """
    defs = [build_badge(spec, path=f"demo.badges[{i}]") for i, spec in enumerate(DEMO_BADGES)]
    async with services.db.write() as session:
        await badges_config.apply_section(session, brand_id=brand.id, defs=defs, now=services.clock.now())
