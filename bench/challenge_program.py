"""A program document with 50 active challenges of mixed rule types, for the ingestion benchmark.

Every challenge looks at one of the event types ``purchase``, ``visit``, ``review``, ``referral`` and
``survey`` (properties used: ``amount``, ``store``, ``stars``, ``channel``). The campaign has no window,
so every benchmark event is inside it whenever it occurred.
"""

from __future__ import annotations

from typing import Any

EVENT_TYPES = ("purchase", "visit", "review", "referral", "survey")


def _rules() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(key, rule, extra challenge fields) for the 50 challenges: 8 per event type and 10 across types."""
    rules: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for index, event_type in enumerate(EVENT_TYPES):
        following = EVENT_TYPES[(index + 1) % len(EVENT_TYPES)]
        rules += [
            (f"{event_type}-regular", {"type": "count", "event_type": event_type, "target": 10}, {}),
            (f"{event_type}-fan", {"type": "count", "event_type": event_type, "target": 50}, {"min_interval": "1m"}),
            (
                f"{event_type}-weekly",
                {"type": "count", "event_type": event_type, "target": 5},
                {"recurrence": "weekly", "max_completions": 20},
            ),
            (
                f"{event_type}-daily",
                {"type": "count", "event_type": event_type, "target": 3},
                {"recurrence": "daily", "daily_cap": 3},
            ),
            (f"{event_type}-streak", {"type": "streak", "event_type": event_type, "target": 7, "freezes": 1}, {}),
            (
                f"{event_type}-weeks",
                {"type": "streak", "event_type": event_type, "target": 4, "period": "week", "grace": 1},
                {},
            ),
            (
                f"{event_type}-stores",
                {"type": "distinct", "event_type": event_type, "property": "store", "target": 5},
                {},
            ),
            (
                f"{event_type}-then-{following}",
                {"type": "sequence", "steps": [{"event_type": event_type}, {"event_type": following}]},
                {},
            ),
        ]
    rules += [
        ("spend-500", {"type": "sum", "event_type": "purchase", "property": "amount", "target": 500}, {}),
        (
            "spend-2000-monthly",
            {"type": "sum", "event_type": "purchase", "property": "amount", "target": 2000},
            {"recurrence": "monthly"},
        ),
        (
            "big-baskets",
            {
                "type": "count",
                "event_type": "purchase",
                "target": 5,
                "filter": {"field": "properties.amount", "gte": 50},
            },
            {},
        ),
        (
            "good-reviews",
            {"type": "count", "event_type": "review", "target": 10, "filter": {"field": "properties.stars", "gte": 4}},
            {},
        ),
        (
            "app-surveys",
            {
                "type": "count",
                "event_type": "survey",
                "target": 5,
                "filter": {
                    "any": [
                        {"field": "properties.channel", "eq": "app"},
                        {"field": "properties.channel", "exists": False},
                    ]
                },
            },
            {},
        ),
        ("all-rounder", {"type": "all_of", "steps": [{"event_type": t} for t in EVENT_TYPES]}, {}),
        (
            "critic-path",
            {
                "type": "sequence",
                "steps": [{"event_type": "review"}, {"event_type": "visit"}, {"event_type": "purchase"}],
            },
            {},
        ),
        ("city-explorer", {"type": "distinct", "event_type": "visit", "property": "store", "target": 10}, {}),
        ("first-referral", {"type": "first", "event_type": "referral"}, {}),
        (
            "first-five-stars",
            {"type": "first", "event_type": "review", "filter": {"field": "properties.stars", "eq": 5}},
            {},
        ),
    ]
    return rules


def fifty_challenges() -> dict[str, Any]:
    """A program document (campaign + 50 challenges, every rule type) for ``PUT /v1/program`` or ``apply_program``."""
    challenges = [
        {
            "key": key,
            "campaign": "bench",
            "title": key.replace("-", " ").capitalize(),
            "rule": rule,
            "reward": {"points": 10 + position % 5 * 10},
            **extra,
        }
        for position, (key, rule, extra) in enumerate(_rules())
    ]
    assert len(challenges) == 50, len(challenges)
    return {
        "campaigns": [{"key": "bench", "title": "Benchmark campaign", "description": "Always on."}],
        "challenges": challenges,
    }
