"""Table tests for the pure tier rules."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.effects import ChallengeCompleted, PointsAwarded
from engine.errors import DefinitionError
from engine.events import Event
from tiers.models import Metric, Qualification, TierProgram, TierSpec, Window, build_program
from tiers.rules import (
    add_months,
    birthday_today,
    earning_factor,
    increment,
    is_upgrade,
    keep_until,
    progress,
    review,
    review_at,
    simulate,
    tier_for,
    window_days,
)

ROME = ZoneInfo("Europe/Rome")
PROGRAM = build_program(
    TierProgram(
        tiers=[
            TierSpec(key="gold", threshold=1000),
            TierSpec(key="base", threshold=0),
            TierSpec(key="silver", threshold=300),
        ]
    )
)
NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_tiers_are_ordered_by_threshold():
    assert [t.key for t in PROGRAM.tiers] == ["base", "silver", "gold"]


@pytest.mark.parametrize(
    ("tiers", "qualification", "field"),
    [
        ([TierSpec(key="a"), TierSpec(key="a", threshold=5)], Qualification(), "$.tiers[1].key"),
        ([TierSpec(key="a", threshold=5), TierSpec(key="b", threshold=5)], Qualification(), "$.tiers[1].threshold"),
        ([TierSpec(key="a")], Qualification(metric=Metric(kind="property_sum")), "$.qualification.metric.property"),
        ([TierSpec(key="a")], Qualification(metric=Metric(kind="event_count")), "$.qualification.metric.event_types"),
    ],
)
def test_invalid_programs_name_the_path(tiers, qualification, field):
    with pytest.raises(DefinitionError) as raised:
        build_program(TierProgram(tiers=tiers, qualification=qualification))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, "base"), (299.99, "base"), (300, "silver"), (999, "silver"), (1000, "gold"), (1e9, "gold")],
)
def test_tier_for(value, expected):
    assert tier_for(PROGRAM, value).key == expected


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [(None, 0, "base"), ("base", 300, "silver"), ("silver", 300, None), ("gold", 300, None), ("base", 5000, "gold")],
)
def test_is_upgrade_only_moves_up(current, value, expected):
    target = is_upgrade(PROGRAM, current, value)
    assert (target.key if target else None) == expected


@pytest.mark.parametrize(
    ("window", "day", "since", "expected"),
    [
        (Window(kind="calendar_year"), date(2026, 11, 20), date(2020, 5, 1), (date(2026, 1, 1), date(2027, 1, 1))),
        (Window(kind="anniversary"), date(2026, 11, 20), date(2020, 5, 1), (date(2026, 5, 1), date(2027, 5, 1))),
        (Window(kind="anniversary"), date(2026, 3, 1), date(2020, 5, 1), (date(2025, 5, 1), date(2026, 5, 1))),
        (Window(kind="anniversary"), date(2025, 3, 1), date(2024, 2, 29), (date(2025, 2, 28), date(2026, 2, 28))),
        (
            Window(kind="rolling", days=30),
            date(2026, 11, 20),
            date(2020, 5, 1),
            (date(2026, 10, 22), date(2026, 11, 21)),
        ),
    ],
)
def test_window_days(window, day, since, expected):
    assert window_days(window, day, member_since=since) == expected


@pytest.mark.parametrize(
    ("window", "at", "expected"),
    [
        # calendar year: 1 January local midnight (CET)
        (Window(kind="calendar_year"), NOW, datetime(2026, 12, 31, 23, tzinfo=UTC)),
        # rolling 30 days from 10 March: 9 April local midnight, after the DST change (CEST)
        (Window(kind="rolling", days=30), datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 4, 8, 22, tzinfo=UTC)),
    ],
)
def test_review_at_is_local_midnight(window, at, expected):
    assert review_at(window, at, ROME, member_since=datetime(2020, 1, 1, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    ("current", "value", "keep", "expected"),
    [
        ("silver", 300, None, ("renewed", "silver")),
        ("silver", 1200, None, ("renewed", "gold")),
        ("silver", 100, None, ("downgraded", "base")),
        ("silver", 100, datetime(2027, 1, 1, tzinfo=UTC), ("kept", "silver")),
        ("silver", 100, datetime(2026, 1, 1, tzinfo=UTC), ("downgraded", "base")),
        ("retired", 100, None, ("renewed", "base")),
    ],
)
def test_review(current, value, keep, expected):
    outcome = review(PROGRAM, current=current, value=value, now=NOW, keep_until=keep)
    assert (outcome.change, outcome.tier) == expected


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [
        ("base", 120, ("silver", 180, 0, 0.4)),
        ("silver", 650, ("gold", 350, 0, 0.5)),
        ("silver", 200, ("gold", 800, 100, 0.0)),
        ("gold", 400, (None, 0, 600, 1.0)),
    ],
)
def test_progress(current, value, expected):
    shown = progress(PROGRAM, current=current, value=value)
    assert (shown.next_tier, shown.to_next, shown.keep_needed, shown.ratio) == pytest.approx(expected)


def test_stacking_multiplies():
    assert earning_factor(2.0, 1.5) == 3.0
    assert earning_factor(1.0, 1.0) == 1.0


@pytest.mark.parametrize(
    ("metric", "event", "effects", "expected"),
    [
        (Metric(), Event(id="e", member="m", type="buy", occurred_at=NOW), [PointsAwarded(points=30, source="rule", key="r"), PointsAwarded(points=-5, source="adjustment", key="x")], 30),
        (Metric(kind="property_sum", property="amount"), Event(id="e", member="m", type="buy", occurred_at=NOW, properties={"amount": 12.5}), [], 12.5),
        (Metric(kind="property_sum", property="amount", event_types=["buy"]), Event(id="e", member="m", type="refund", occurred_at=NOW, properties={"amount": 12.5}), [], 0),
        (Metric(kind="property_sum", property="amount"), Event(id="e", member="m", type="buy", occurred_at=NOW, properties={"amount": True}), [], 0),
        (Metric(kind="event_count", event_types=["visit"]), Event(id="e", member="m", type="visit", occurred_at=NOW), [], 1),
        (Metric(kind="challenges_completed"), Event(id="e", member="m", type="visit", occurred_at=NOW), [ChallengeCompleted(challenge="c")], 1),
    ],
)  # fmt: skip
def test_increment(metric, event, effects, expected):
    assert increment(metric, event, effects) == expected


@pytest.mark.parametrize(
    ("value", "today", "expected"),
    [
        ("1990-11-20", date(2026, 11, 20), True),
        ("11-20", date(2026, 11, 20), True),
        ("1990-11-21", date(2026, 11, 20), False),
        ("2000-02-29", date(2027, 2, 28), True),
        ("2000-02-29", date(2028, 2, 28), False),
        ("not a date", date(2026, 11, 20), False),
        (None, date(2026, 11, 20), False),
    ],
)
def test_birthday_today(value, today, expected):
    assert birthday_today(value, today) is expected


def test_add_months_and_keep_until():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert keep_until(0, NOW, ROME) is None
    assert keep_until(6, NOW, ROME) == datetime(2027, 5, 19, 22, tzinfo=UTC)  # 20 May local midnight (CEST)


def test_simulation_counts_moves():
    proposed = build_program(
        TierProgram(
            tiers=[TierSpec(key="base"), TierSpec(key="silver", threshold=200), TierSpec(key="gold", threshold=500)]
        )
    )
    report = simulate(
        PROGRAM,
        proposed,
        values={1: 250, 2: 600, 3: 50, 4: 400},
        current={1: "base", 2: "silver", 3: "base", 4: "gold"},
    )
    assert (report["members"], report["up"], report["down"]) == (4, 2, 1)
    assert report["after"] == {"silver": 2, "gold": 1, "base": 1}


def test_member_tier_in_the_predicate_view_reads_the_computed_tier_first():
    from engine.ids import MemberId
    from engine.members import Member
    from engine.predicates import matches, parse_predicate

    def member(tier):
        return Member(id=MemberId(1), external_id="m", display_name="", locale="it", attributes={"tier": "bronze"},
                      created_at=NOW, tier=tier)  # fmt: skip

    gold_only = parse_predicate({"field": "member.tier", "in": ["gold"]})
    assert matches(gold_only, properties={}, member=member("gold").predicate_view)
    assert not matches(gold_only, properties={}, member=member(None).predicate_view)  # the attribute: bronze
    assert member(None).predicate_view["tier"] == "bronze"
