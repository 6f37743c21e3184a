from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.earning import EarningRuleSpec, Multiplier, PerUnit, build_rule, evaluate
from engine.errors import DefinitionError, ValidationError
from engine.events import Event

ROME = ZoneInfo("Europe/Rome")
AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


def ev(type_="purchase", at=AT, **props):
    return Event(id="e", member="m", type=type_, occurred_at=at, properties=props)


def rules(*specs):
    return tuple(build_rule(s) for s in specs)


@pytest.mark.parametrize(
    ("amount", "per", "expected"),
    [(12.5, 1.0, 12), (12.99, 1.0, 12), (3, 0.5, 1), (0.3, 10.0, 3), (19.99, 10.0, 199)],
)
def test_per_unit_rounds_down(amount, per, expected):
    spec = EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount", points=per))
    [effect] = evaluate(rules(spec), ev(amount=amount), {}, tz=ROME, earned_today={})
    assert effect.points == expected


def test_filter_and_type():
    spec = EarningRuleSpec(key="review", event_type="review", points=50, filter={"field": "properties.stars", "gte": 4})
    assert evaluate(rules(spec), ev("review", stars=3), {}, tz=ROME, earned_today={}) == []
    assert evaluate(rules(spec), ev("purchase", stars=5), {}, tz=ROME, earned_today={}) == []
    [effect] = evaluate(rules(spec), ev("review", stars=5), {}, tz=ROME, earned_today={})
    assert (effect.points, effect.key, effect.source) == (50, "review", "rule")


def test_member_attribute_filter():
    spec = EarningRuleSpec(key="gold", event_type="visit", points=5, filter={"field": "member.tier", "eq": "gold"})
    assert evaluate(rules(spec), ev("visit"), {"tier": "silver"}, tz=ROME, earned_today={}) == []
    assert len(evaluate(rules(spec), ev("visit"), {"tier": "gold"}, tz=ROME, earned_today={})) == 1


def test_daily_cap_in_brand_time():
    spec = EarningRuleSpec(key="visit", event_type="visit", points=10, daily_cap=25)
    earned: dict = {}
    got = [evaluate(rules(spec), ev("visit"), {}, tz=ROME, earned_today=earned) for _ in range(4)]
    assert [e[0].points for e in got[:3]] == [10, 10, 5]
    assert got[2][0].capped
    assert got[3][0].points == 0 and got[3][0].capped
    # 23:30 UTC on the 20th is already the 21st in Rome: a new day, a new cap
    next_day = evaluate(
        rules(spec), ev("visit", at=datetime(2026, 11, 20, 23, 30, tzinfo=UTC)), {}, tz=ROME, earned_today=earned
    )
    assert next_day[0].points == 10
    assert earned[("visit", date(2026, 11, 21))] == 10


def test_multiplier_window():
    spec = EarningRuleSpec(
        key="visit",
        event_type="visit",
        points=10,
        multipliers=[Multiplier(starts_at=AT, ends_at=datetime(2026, 11, 22, tzinfo=UTC), factor=2.0)],
    )
    [inside] = evaluate(rules(spec), ev("visit"), {}, tz=ROME, earned_today={})
    [before] = evaluate(rules(spec), ev("visit", at=datetime(2026, 11, 19, tzinfo=UTC)), {}, tz=ROME, earned_today={})
    [at_end] = evaluate(rules(spec), ev("visit", at=datetime(2026, 11, 22, tzinfo=UTC)), {}, tz=ROME, earned_today={})
    assert (inside.points, inside.multiplier) == (20, 2.0)
    assert before.points == 10 and at_end.points == 10


def test_missing_or_non_numeric_property_earns_nothing():
    spec = EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount"))
    assert evaluate(rules(spec), ev(), {}, tz=ROME, earned_today={}) == []
    assert evaluate(rules(spec), ev(amount="12"), {}, tz=ROME, earned_today={}) == []
    assert evaluate(rules(spec), ev(amount=-5), {}, tz=ROME, earned_today={}) == []


def test_points_limit_names_the_property():
    spec = EarningRuleSpec(key="buy", event_type="purchase", per_unit=PerUnit(property="amount", points=1000))
    with pytest.raises(ValidationError) as info:
        evaluate(rules(spec), ev(amount=9e9), {}, tz=ROME, earned_today={}, path="$.events[3].properties")
    assert info.value.field == "$.events[3].properties.amount"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (EarningRuleSpec(key="a", event_type="x"), "rule.points"),
        (EarningRuleSpec(key="a", event_type="x", points=1, per_unit=PerUnit(property="p")), "rule.per_unit"),
        (EarningRuleSpec(key="a", event_type="x", points=1, filter={"field": "oops", "eq": 1}), "rule.filter.field"),
        (
            EarningRuleSpec(
                key="a", event_type="x", points=1, multipliers=[Multiplier(starts_at=AT, ends_at=AT, factor=2)]
            ),
            "rule.multipliers[0]",
        ),
    ],
)
def test_invalid_rules(spec, field):
    with pytest.raises(DefinitionError) as info:
        build_rule(spec)
    assert info.value.field == field
