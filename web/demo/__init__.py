"""The demo brand: a coffee-shop chain with members, earning rules and two weeks of events.

Seeded by ``questline demo`` (and at start when ``QUESTLINE_DEMO=true``). Its keys are fixed and printed,
so a newcomer can call the API at once; they are test keys (``sk_test_…``) for a local machine only.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from engine import tenants
from engine.admins import create_admin
from engine.earning import EarningRuleSpec, Multiplier, PerUnit
from engine.errors import NotFound
from engine.events import Event
from engine.members import MemberIn, upsert_member
from engine.rules_store import put_rule
from engine.tenants import KeyKind
from web.demo import badges as badges_demo
from web.demo import challenges as challenges_demo
from web.demo import enrollment as enrollment_demo
from web.demo import leaderboards as leaderboards_demo
from web.demo import rewards as rewards_demo
from web.demo import segments as segments_demo
from web.demo import tiers as tiers_demo
from web.deps import Services

DEMO_SLUG = "demo"
DEMO_SECRET_KEY = "sk_test_questline_demo_secret_key"
DEMO_PUBLISHABLE_KEY = "pk_test_questline_demo_public_key"
DEMO_ADMIN_EMAIL = "admin@demo.example"
DEMO_ADMIN_PASSWORD = "questline-demo"

MEMBERS = [
    ("m-giulia", "Giulia Rossi", "it", {"store": "milano-centro", "region": "north", "tier": "gold"}),
    ("m-marco", "Marco Bianchi", "it", {"store": "milano-centro", "region": "north", "tier": "silver"}),
    ("m-sofia", "Sofia Romano", "it", {"store": "roma-termini", "region": "center", "tier": "silver"}),
    ("m-luca", "Luca Colombo", "it", {"store": "torino-po", "region": "north", "tier": "bronze"}),
    ("m-chiara", "Chiara Ricci", "it", {"store": "roma-termini", "region": "center", "tier": "gold"}),
    (
        "m-alessandro",
        "Alessandro Greco",
        "it",
        {"store": "napoli-toledo", "region": "south", "tier": "bronze"},
    ),
    ("m-emma", "Emma Wilson", "en", {"store": "milano-centro", "region": "north", "tier": "bronze"}),
    ("m-francesca", "Francesca Bruno", "it", {"store": "napoli-toledo", "region": "south", "tier": "silver"}),
    ("m-davide", "Davide Gallo", "it", {"store": "torino-po", "region": "north", "tier": "bronze"}),
    ("m-martina", "Martina Conti", "it", {"store": "roma-termini", "region": "center", "tier": "bronze"}),
    ("m-oliver", "Oliver Smith", "en", {"store": "milano-centro", "region": "north", "tier": "silver"}),
    ("m-elena", "Elena Costa", "it", {"store": "napoli-toledo", "region": "south", "tier": "gold"}),
]


def earning_rules(services: Services) -> list[EarningRuleSpec]:
    """The demo brand's earning rules (a double-points weekend around now included)."""
    now = services.clock.now()
    return [
        EarningRuleSpec(
            key="purchase",
            event_type="purchase",
            per_unit=PerUnit(property="amount", points=1.0),
            description="1 point per euro spent",
            multipliers=[Multiplier(starts_at=now - timedelta(days=2), ends_at=now + timedelta(days=5), factor=2.0)],
        ),
        EarningRuleSpec(
            key="review",
            event_type="review",
            points=50,
            filter={"field": "properties.stars", "gte": 4},
            daily_cap=100,
            description="50 points for a 4- or 5-star review, at most 100 a day",
        ),
        EarningRuleSpec(key="visit", event_type="visit", points=10, daily_cap=20, description="10 points a visit"),
        EarningRuleSpec(
            key="referral",
            event_type="referral",
            points=200,
            holding_days=14,
            description="200 points per friend referred, available after 14 days",
        ),
        EarningRuleSpec(key="survey", event_type="survey", points=30, description="30 points per survey answered"),
    ]


def demo_events(services: Services) -> list[Event]:
    """Two weeks of plausible activity, the same on every run (seeded)."""
    rng = random.Random(7)
    now = services.clock.now()
    stores = ["milano-centro", "roma-termini", "torino-po", "napoli-toledo", "bologna-maggiore"]
    events: list[Event] = []
    for index, (external_id, *_rest) in enumerate(MEMBERS):
        activity = 4 + (len(MEMBERS) - index)
        for n in range(activity):
            when = now - timedelta(days=rng.randint(0, 13), hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
            kind = rng.choice(["purchase", "purchase", "visit", "visit", "review", "survey", "referral"])
            props: dict[str, Any] = {"store": rng.choice(stores)}
            if kind == "purchase":
                props["amount"] = round(rng.uniform(3, 60), 2)
            elif kind == "review":
                props["stars"] = rng.choice([3, 4, 5, 5])
            events.append(
                Event(
                    id=f"demo-{external_id}-{n}",
                    member=external_id,
                    type=kind,
                    occurred_at=when,
                    properties=props,
                )
            )
    events.sort(key=lambda e: e.occurred_at)
    return events


async def ensure_demo(services: Services) -> bool:
    """Create the demo brand and its data unless it exists; returns whether it was created."""
    async with services.db.read() as session:
        try:
            await tenants.get_brand(session, DEMO_SLUG)
            return False
        except NotFound:
            pass
    now = services.clock.now()
    brand, _keys = await tenants.create_brand(
        services.db,
        name="Demo Coffee",
        slug=DEMO_SLUG,
        timezone="Europe/Rome",
        now=now,
        fixed_keys={KeyKind.SECRET: DEMO_SECRET_KEY, KeyKind.PUBLISHABLE: DEMO_PUBLISHABLE_KEY},
    )
    for spec in earning_rules(services):
        await put_rule(services.db, brand_id=brand.id, spec=spec, now=now)
    for seed in (
        challenges_demo.seed_demo,
        badges_demo.seed_demo,
        leaderboards_demo.seed_demo,
        rewards_demo.seed_demo,
        enrollment_demo.seed_demo,
    ):
        await seed(services, brand)
    for external_id, name, locale, attributes in MEMBERS:
        await upsert_member(
            services.db,
            brand_id=brand.id,
            data=MemberIn(external_id=external_id, display_name=name, locale=locale, attributes=attributes),
            now=now,
        )
    await tiers_demo.seed_demo(services, brand)  # after the members: their tier attributes are adopted
    # before the events, so the experiment has results; Giulia stays out (the README's example answers her points)
    await segments_demo.seed_demo(services, brand, members=[m[0] for m in MEMBERS if m[0] != "m-giulia"])
    await create_admin(
        services.db,
        brand_id=brand.id,
        email=DEMO_ADMIN_EMAIL,
        password=DEMO_ADMIN_PASSWORD,
        name="Demo Admin",
        now=now,
    )
    async with services.db.read() as session:
        brand = await tenants.get_brand(session, DEMO_SLUG)
    await services.pipeline.process(brand, demo_events(services))
    await rewards_demo.redeem_demo(services, brand)
    return True


async def banner(services: Services) -> str:
    """What a newcomer needs to try the demo: keys, sign-in, a member link, and two requests."""
    from datetime import timedelta

    from web.pages import tokens

    settings = services.settings
    base = settings.public_url.rstrip("/")
    async with services.db.read() as session:
        brand = await tenants.get_brand(session, DEMO_SLUG)
    link = tokens.sign(
        secret=settings.secret,
        purpose=tokens.Purpose.PORTAL_LINK,
        brand_id=brand.id,
        member="m-giulia",
        expires_at=services.clock.now() + timedelta(days=7),
    )
    now = services.clock.now()
    return "\n".join(
        [
            "",
            f"  Questline is running on {base}   (API reference: {base}/schema)",
            "  Demo brand 'demo' (Demo Coffee, Europe/Rome):",
            f"    secret key        {DEMO_SECRET_KEY}",
            f"    publishable key   {DEMO_PUBLISHABLE_KEY}",
            f"    admin console     {base}/console   ({DEMO_ADMIN_EMAIL} / {DEMO_ADMIN_PASSWORD})",
            f"    member portal     {base}/portal/enter/{link}",
            f"    widget            {base}/widgets/leaderboard/weekly-points?key={DEMO_PUBLISHABLE_KEY}",
            f"    join page         {base}/join/{DEMO_SLUG}   (mails: the console's Joining page, or the log)",
            "  Try:",
            f"    curl -s {base}/v1/members/m-giulia/challenges -H 'Authorization: Bearer {DEMO_SECRET_KEY}'",
            f"    curl -s {base}/v1/events -H 'Authorization: Bearer {DEMO_SECRET_KEY}' -H 'Content-Type: application/json' \\",
            f'      -d \'{{"id": "try-{uuid.uuid4().hex[:12]}", "member": "m-giulia", "type": "purchase", '
            f'"occurred_at": "{now:%Y-%m-%dT%H:%M:%SZ}", "properties": {{"amount": 12.5}}}}\'',
            "",
        ]
    )
