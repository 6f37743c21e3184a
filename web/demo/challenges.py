"""The demo brand's campaigns and challenges: every rule type, a recurring one, an opt-in campaign."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from challenges import service
from engine.tenants import Brand
from web.deps import Services
from web.program import apply_program


def demo_program(now: datetime) -> dict[str, Any]:
    """The demo brand's campaigns and challenges: every rule type, a recurring one, an opt-in campaign."""
    start = (now - timedelta(days=30)).isoformat()
    end = (now + timedelta(days=60)).isoformat()
    return {
        "campaigns": [
            {
                "key": "autumn",
                "title": "Autumn at the café",
                "description": "Visit, taste, review: challenges all season long.",
                "starts_at": start,
                "ends_at": end,
            },
            {
                "key": "club",
                "title": "Club challenges",
                "description": "For gold and silver members.",
                "starts_at": start,
                "ends_at": end,
                "eligibility": {"field": "member.tier", "in": ["gold", "silver"]},
            },
            {
                "key": "panel",
                "title": "Tasting panel",
                "description": "Members who join the panel answer our surveys.",
                "starts_at": start,
                "ends_at": end,
                "opt_in": True,
            },
        ],
        "challenges": [
            {
                "key": "regular",
                "campaign": "autumn",
                "title": "Regular",
                "description": "Buy a coffee five times.",
                "rule": {"type": "count", "event_type": "purchase", "target": 5},
                "reward": {"points": 100},
                "min_interval": "10m",
            },
            {
                "key": "big-spender",
                "campaign": "autumn",
                "title": "Big spender",
                "description": "Spend 150 euro.",
                "rule": {"type": "sum", "event_type": "purchase", "property": "amount", "target": 150},
                "reward": {"points": 200},
            },
            {
                "key": "three-day-streak",
                "campaign": "autumn",
                "title": "Three days in a row",
                "description": "Visit us three days in a row; one missed day is forgiven once.",
                "rule": {"type": "streak", "event_type": "visit", "target": 3, "freezes": 1},
                "reward": {"points": 50, "badge": "streak-master"},
            },
            {
                "key": "explorer",
                "campaign": "autumn",
                "title": "Explorer",
                "description": "Visit three different cafés.",
                "rule": {"type": "distinct", "event_type": "visit", "property": "store", "target": 3},
                "reward": {"points": 75, "badge": "explorer"},
            },
            {
                "key": "critic",
                "campaign": "autumn",
                "title": "Critic",
                "description": "Write a 4- or 5-star review, refer a friend, then visit.",
                "rule": {
                    "type": "sequence",
                    "steps": [
                        {"event_type": "review", "filter": {"field": "properties.stars", "gte": 4}},
                        {"event_type": "referral"},
                        {"event_type": "visit"},
                    ],
                },
                "reward": {"points": 150, "badge": "critic"},
            },
            {
                "key": "all-rounder",
                "campaign": "club",
                "title": "All-rounder",
                "description": "A purchase, a review and a survey, in any order.",
                "rule": {
                    "type": "all_of",
                    "steps": [{"event_type": "purchase"}, {"event_type": "review"}, {"event_type": "survey"}],
                },
                "reward": {"points": 120},
            },
            {
                "key": "first-review",
                "campaign": "autumn",
                "title": "First review",
                "description": "Your first review ever.",
                "rule": {"type": "first", "event_type": "review"},
                "reward": {"points": 25},
            },
            {
                "key": "panelist",
                "campaign": "panel",
                "title": "Panelist",
                "description": "Answer two surveys (join the panel first).",
                "rule": {"type": "count", "event_type": "survey", "target": 2},
                "reward": {"points": 40},
            },
            {
                "key": "weekly-visits",
                "campaign": "autumn",
                "title": "Three visits a week",
                "description": "Visit three times in a week; up to ten weeks.",
                "rule": {"type": "count", "event_type": "visit", "target": 3},
                "recurrence": "weekly",
                "max_completions": 10,
                "reward": {"points": 30},
            },
        ],
    }


#: Demo members who joined the opt-in panel (a month ago, so the demo's past events count).
DEMO_PANELISTS = ("m-giulia", "m-marco", "m-sofia")


async def seed_demo(services: Services, brand: Brand) -> None:
    """Apply the demo program (campaigns and challenges of every rule type) and opt a few members in."""
    now = services.clock.now()
    await apply_program(services.db, brand=brand, document=demo_program(now), now=now, source="demo")
    for external_id in DEMO_PANELISTS:
        await service.opt_in(
            services.db, brand=brand, external_id=external_id, campaign_key="panel", now=now - timedelta(days=30)
        )
