"""The tier multiplier in earning rules: it multiplies the rule's time-limited multipliers, before the cap."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.earning import EarningRuleSpec, Multiplier, build_rule, evaluate
from engine.events import Event

NOW = datetime(2026, 11, 21, 10, tzinfo=UTC)
WEEKEND = Multiplier(starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1), factor=2.0)


@pytest.mark.parametrize(
    ("multipliers", "tier_factor", "cap", "expected"),
    [
        ([], 1.0, None, (10, 1.0, False)),
        ([], 1.5, None, (15, 1.5, False)),
        ([WEEKEND], 1.5, None, (30, 3.0, False)),
        ([WEEKEND, WEEKEND], 1.25, None, (50, 5.0, False)),
        ([WEEKEND], 2.0, 25, (25, 4.0, True)),
    ],
)
def test_tier_factor_stacks_by_multiplying(multipliers, tier_factor, cap, expected):
    rule = build_rule(EarningRuleSpec(key="buy", event_type="buy", points=10, multipliers=multipliers, daily_cap=cap))
    event = Event(id="e", member="m", type="buy", occurred_at=NOW)
    [award] = evaluate((rule,), event, {}, tz=ZoneInfo("Europe/Rome"), earned_today={}, tier_factor=tier_factor)
    assert (award.points, award.multiplier, award.capped) == expected
