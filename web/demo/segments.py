"""The demo brand's segments and offers: two segments, an opt-in offer for one, and an A/B experiment.

Seeded before the demo events are processed, so the experiment has results: every demo member is assigned
an arm on their first purchase, the treated arm earns the bonus, the control arm nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from engine.tenants import Brand
from segments import offer_repository as offers_repo
from segments import repository as segments_repo
from segments.models import SegmentDef
from segments.offers import OfferDef
from web.deps import Services

DEMO_SEGMENTS: list[dict[str, Any]] = [
    {
        "slug": "regulars",
        "name": {"en": "Regulars", "it": "Clienti abituali"},
        "description": "At least five visits or purchases in the last 30 days.",
        "clauses": [{"metric": "events", "days": 30, "gte": 5}],
    },
    {
        "slug": "big-spenders",
        "name": {"en": "Big spenders", "it": "Grandi spenditori"},
        "description": "€60 or more spent in the last 30 days.",
        "clauses": [{"metric": "spend", "event_type": "purchase", "property": "amount", "days": 30, "gte": 60}],
    },
]


async def seed_demo(services: Services, brand: Brand, *, members: list[str]) -> None:
    """Store the segments, an opt-in offer for big spenders and a double-points experiment on every member."""
    now = services.clock.now()
    window = {"starts_at": (now - timedelta(days=30)).isoformat(), "ends_at": (now + timedelta(days=30)).isoformat()}
    offers: list[dict[str, Any]] = [
        {
            "key": "treat-yourself",
            "title": {"en": "Treat yourself: 50 points", "it": "Concediti un premio: 50 punti"},
            "description": {"en": "On your next purchase.", "it": "Sul tuo prossimo acquisto."},
            "kind": "bonus", "points": 50, "event_type": "purchase", "segment": "big-spenders", "opt_in": True,
            "budget": 5000, **window,
        },
        {
            "key": "double-points",
            "title": {"en": "Double points on purchases", "it": "Punti doppi sugli acquisti"},
            "kind": "multiplier", "multiplier": 2, "event_type": "purchase", "members": members,
            "per_member_limit": 20, "budget": 20000, **window,
            "experiment": {"arms": [{"key": "control", "percent": 50, "control": True},
                                    {"key": "double", "percent": 50}]},
        },
    ]  # fmt: skip
    async with services.db.write() as session:
        for plain in DEMO_SEGMENTS:
            segment = msgspec.convert(plain, SegmentDef)
            await segments_repo.save_segment(session, brand_id=brand.id, segment=segment, now=now)
        for plain in offers:
            await offers_repo.save_offer(session, brand_id=brand.id, offer=msgspec.convert(plain, OfferDef), now=now)
