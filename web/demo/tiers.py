"""The demo brand's tiers: Bronze, Silver and Gold by euros spent in the calendar year.

Seeded after the demo members exist, so their ``tier`` attributes (bronze/silver/gold) are adopted as
their starting tiers (history change ``migrated``), as for any existing brand; then the demo events
upgrade whoever spends enough.
"""

from __future__ import annotations

from engine.tenants import Brand
from tiers import repository as tiers_repo
from tiers.models import Metric, Qualification, TierProgram, TierSpec, Window, build_program
from web.deps import Services

DEMO_TIERS = TierProgram(
    qualification=Qualification(
        metric=Metric(kind="property_sum", property="amount", event_types=["purchase"]),
        window=Window(kind="calendar_year"),
        grace_days=14,
        keep_months=3,
        unit="€",
    ),
    tiers=[
        TierSpec(
            key="bronze",
            name={"en": "Bronze", "it": "Bronzo"},
            color="#a97142",
            icon="medal",
            threshold=0,
            perks=[{"en": "Member prices on seasonal drinks", "it": "Prezzi soci sulle bevande di stagione"}],
        ),
        TierSpec(
            key="silver",
            name={"en": "Silver", "it": "Argento"},
            color="#8a9199",
            icon="medal",
            threshold=100,
            multiplier=1.25,
            perks=[{"en": "A free pastry on your birthday", "it": "Una brioche gratis il giorno del compleanno"}],
            birthday_points=50,
        ),
        TierSpec(
            key="gold",
            name={"en": "Gold", "it": "Oro"},
            color="#c9a227",
            icon="trophy",
            threshold=250,
            multiplier=1.5,
            perks=[{"en": "Skip the queue with app orders", "it": "Salta la fila con gli ordini dall'app"}],
            choices=["free-coffee-week", "tote-bag", "tasting-for-two"],
            birthday_points=150,
            badge="",
        ),
    ],
)


async def seed_demo(services: Services, brand: Brand) -> None:
    """Define the demo tiers (members' ``tier`` attributes are adopted as their starting tiers)."""
    async with services.db.write() as session:
        await tiers_repo.save_program(
            session, brand_id=brand.id, program=build_program(DEMO_TIERS), now=services.clock.now()
        )
