from datetime import UTC, datetime

import pytest

from badges.criteria import (
    build_shelf,
    external_award,
    initials,
    narrative,
    next_progress,
    rule_awards,
    rule_matches,
)
from badges.models import (
    Award,
    AwardOut,
    BadgeSpec,
    Holding,
    LevelSpec,
    Planned,
    Progress,
    RuleSpec,
    badge_to_spec,
    build_badge,
)
from engine.errors import DefinitionError, ValidationError

LEVELS = [
    LevelSpec(key="bronze", threshold=1, points=10),
    LevelSpec(key="silver", threshold=10, points=20),
    LevelSpec(key="gold", threshold=50, points=50),
]
LEVELED = build_badge(
    BadgeSpec(
        key="critic",
        name="Critic",
        rule=RuleSpec(event_type="review", filter={"field": "properties.stars", "gte": 4}),
        levels=LEVELS,
    )
)
REPEATABLE = build_badge(
    BadgeSpec(key="survey", name="Survey star", rule=RuleSpec(event_type="survey", count=2), repeatable=True, points=5)
)
SINGLE = build_badge(BadgeSpec(key="first", name="First purchase", rule=RuleSpec(event_type="purchase", count=3)))
MANUAL = build_badge(BadgeSpec(key="vip", name="VIP guest", points=7))
MANUAL_REPEATABLE = build_badge(BadgeSpec(key="top", name="Top reviewer", repeatable=True))


@pytest.mark.parametrize(
    ("badge", "before", "after", "held", "expected"),
    [
        (LEVELED, 0, 1, set(), [Planned(level="bronze", instance="", points=10)]),
        (LEVELED, 1, 2, {"bronze"}, []),
        (LEVELED, 9, 10, {"bronze"}, [Planned(level="silver", instance="", points=20)]),
        (
            LEVELED,
            0,
            50,
            set(),
            [
                Planned(level="bronze", instance="", points=10),
                Planned(level="silver", instance="", points=20),
                Planned(level="gold", instance="", points=50),
            ],
        ),
        # a revoked bronze keeps its row: never re-awarded automatically; silver is still due
        (LEVELED, 10, 11, {"bronze"}, [Planned(level="silver", instance="", points=20)]),
        (REPEATABLE, 0, 1, set(), []),
        (REPEATABLE, 1, 2, set(), [Planned(level="", instance="rule:1", points=5)]),
        (REPEATABLE, 3, 4, set(), [Planned(level="", instance="rule:2", points=5)]),
        (
            REPEATABLE,
            0,
            5,
            set(),
            [Planned(level="", instance="rule:1", points=5), Planned(level="", instance="rule:2", points=5)],
        ),
        (SINGLE, 1, 2, set(), []),
        (SINGLE, 2, 3, set(), [Planned(level="", instance="", points=0)]),
        (SINGLE, 3, 4, {""}, []),
        (MANUAL, 0, 1, set(), []),
    ],
)
def test_rule_awards(badge, before, after, held, expected):
    holding = Holding(levels=set(held))
    assert rule_awards(badge, before=before, after=after, holding=holding) == expected
    # planned levels are recorded so one unit of work never plans them twice
    assert rule_awards(badge, before=after, after=after, holding=holding) == []


def test_rule_matches_uses_filter_event_type_and_active():
    member = {"locale": "it"}
    assert rule_matches(LEVELED, event_type="review", properties={"stars": 5}, member=member)
    assert not rule_matches(LEVELED, event_type="review", properties={"stars": 3}, member=member)
    assert not rule_matches(LEVELED, event_type="visit", properties={"stars": 5}, member=member)
    inactive = build_badge(BadgeSpec(key="x", name="X", rule=RuleSpec(event_type="visit"), active=False))
    assert not rule_matches(inactive, event_type="visit", properties={}, member=member)


@pytest.mark.parametrize(
    ("badge", "held", "instance", "level", "expected"),
    [
        (MANUAL, set(), "manual:a", "", Planned(level="", instance="", points=7)),
        (MANUAL, {""}, "manual:a", "", None),
        (
            MANUAL_REPEATABLE,
            {""},
            "board:weekly:2026-W47",
            "",
            Planned(level="", instance="board:weekly:2026-W47", points=0),
        ),
        (LEVELED, set(), "challenge:c:1", "", Planned(level="bronze", instance="", points=10)),
        (LEVELED, {"bronze"}, "challenge:c:1", "", Planned(level="silver", instance="", points=20)),
        (LEVELED, {"bronze", "silver", "gold"}, "challenge:c:1", "", None),
        (LEVELED, set(), "manual:x", "gold", Planned(level="gold", instance="", points=50)),
        (LEVELED, {"gold"}, "manual:x", "gold", None),
    ],
)
def test_external_award(badge, held, instance, level, expected):
    assert external_award(badge, holding=Holding(levels=set(held)), instance=instance, level=level) == expected


def test_external_award_rejects_unknown_level():
    with pytest.raises(ValidationError) as info:
        external_award(LEVELED, holding=Holding(), instance="manual:x", level="platinum")
    assert info.value.field == "level"


@pytest.mark.parametrize(
    ("badge", "count", "live", "expected"),
    [
        (LEVELED, 0, set(), Progress(level="bronze", level_name="Bronze", current=0, target=1, percent=0.0)),
        (LEVELED, 3, {"bronze"}, Progress(level="silver", level_name="Silver", current=3, target=10, percent=30.0)),
        (
            LEVELED,
            10,
            {"bronze", "silver"},
            Progress(level="gold", level_name="Gold", current=10, target=50, percent=20.0),
        ),
        (LEVELED, 50, {"bronze", "silver", "gold"}, None),
        # a manually granted gold ends the progress even when the count is low
        (LEVELED, 2, {"gold"}, None),
        (REPEATABLE, 5, set(), Progress(level="", level_name="", current=1, target=2, percent=50.0)),
        (SINGLE, 2, set(), Progress(level="", level_name="", current=2, target=3, percent=66.7)),
        (SINGLE, 9, set(), Progress(level="", level_name="", current=3, target=3, percent=100.0)),
        (MANUAL, 4, set(), None),
    ],
)
def test_next_progress(badge, count, live, expected):
    assert next_progress(badge, count=count, live_levels=live) == expected


def test_narrative_is_generated_from_rule_and_levels():
    assert (
        narrative(LEVELED)
        == "Count review events that meet the badge's conditions: Bronze at 1, Silver at 10, Gold at 50."
    )
    assert narrative(LEVELED, LEVELED.levels[1]) == "Silver: record 10 review events that meet the badge's conditions."
    assert narrative(REPEATABLE) == "Each time you record 2 survey events."
    assert narrative(SINGLE) == "Record 3 purchase events."
    assert narrative(build_badge(BadgeSpec(key="c", name="C", criteria="Finish the quest."))) == "Finish the quest."


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (BadgeSpec(key="a", name="A", repeatable=True, levels=LEVELS, rule=RuleSpec(event_type="r")), "$.repeatable"),
        (BadgeSpec(key="a", name="A", levels=LEVELS), "$.rule"),
        (BadgeSpec(key="a", name="A", levels=LEVELS, rule=RuleSpec(event_type="r", count=2)), "$.rule.count"),
        (BadgeSpec(key="a", name="A", levels=LEVELS, rule=RuleSpec(event_type="r"), points=5), "$.points"),
        (
            BadgeSpec(
                key="a",
                name="A",
                rule=RuleSpec(event_type="r"),
                levels=[LevelSpec(key="b", threshold=5), LevelSpec(key="s", threshold=5)],
            ),
            "$.levels[1].threshold",
        ),
        (
            BadgeSpec(
                key="a",
                name="A",
                rule=RuleSpec(event_type="r"),
                levels=[LevelSpec(key="b", threshold=1), LevelSpec(key="b", threshold=5)],
            ),
            "$.levels[1].key",
        ),
        (BadgeSpec(key="a", name="A", color="red"), "$.color"),
        (BadgeSpec(key="a", name="A", icon="unicorn"), "$.icon"),
        (BadgeSpec(key="a", name="A", image="https://example.com/a.png"), "$.image"),
        (
            BadgeSpec(key="a", name="A", rule=RuleSpec(event_type="r", filter={"field": "nope", "eq": 1})),
            "$.rule.filter.field",
        ),
    ],
)
def test_build_badge_names_the_mistake(spec, field):
    with pytest.raises(DefinitionError) as info:
        build_badge(spec, path="$")
    assert info.value.field == field


def test_spec_round_trip():
    assert build_badge(badge_to_spec(LEVELED)) == LEVELED
    assert LEVELED.levels[2].name == "Gold"


def test_initials():
    assert initials("Streak master") == "SM"
    assert initials("critic") == "CR"
    assert initials("  ") == "?"


def _award(badge, level="", *, uid, day, revoked=False):
    return Award(
        uid=uid,
        member_id=1,
        badge=badge,
        level=level,
        instance="",
        source="rule",
        source_ref="",
        reason="",
        points=0,
        awarded_at=datetime(2026, 11, day, tzinfo=UTC),
        revoked_at=datetime(2026, 11, 21, tzinfo=UTC) if revoked else None,
    )


def test_build_shelf_sorts_badges_into_earned_in_progress_and_locked():
    hidden = build_badge(
        BadgeSpec(key="secret", name="Secret", hidden=True, rule=RuleSpec(event_type="visit", count=3))
    )
    revoked_only = build_badge(BadgeSpec(key="gone", name="Gone"))
    shelf = build_shelf(
        "m1",
        badges=[LEVELED, REPEATABLE, SINGLE, MANUAL, hidden, revoked_only],
        counts={"critic": 12, "survey": 5, "secret": 2},
        awards=[
            _award("critic", "bronze", uid="a1", day=1),
            _award("critic", "silver", uid="a2", day=5),
            _award("survey", uid="a3", day=2),
            _award("survey", uid="a4", day=3),
            _award("gone", uid="a5", day=4, revoked=True),
        ],
        rarity={"critic": 50.0, "first": 12.5},
        image_url=lambda badge, level: f"/art/{badge.key}/{level}",
        award_out=lambda a: AwardOut(
            id=a.uid, level=a.level, source=a.source, reason=a.reason, points=a.points, awarded_at=a.awarded_at
        ),
    )
    assert [(e.key, e.level, e.count, e.awarded_at.day, e.last_awarded_at.day) for e in shelf.earned] == [
        ("critic", "silver", 1, 1, 5),
        ("survey", "", 2, 2, 3),
    ]
    assert shelf.earned[0].image == "/art/critic/silver"
    assert shelf.earned[0].rarity == 50.0
    assert shelf.earned[0].next == Progress(level="gold", level_name="Gold", current=12, target=50, percent=24.0)
    assert shelf.earned[1].next == Progress(level="", level_name="", current=1, target=2, percent=50.0)
    # the leveled badge works towards gold; the hidden one is secret until earned
    assert [(p.key, p.progress.level, p.progress.current, p.progress.target) for p in shelf.in_progress] == [
        ("critic", "gold", 12, 50)
    ]
    assert [(lk.key, lk.rarity) for lk in shelf.locked] == [("first", 12.5), ("vip", 0.0), ("gone", 0.0)]


def test_instance_key_stays_within_the_column():
    from badges.criteria import MAX_INSTANCE, instance_key

    assert instance_key("board", "reviews:2026-W47") == "board:reviews:2026-W47"
    long = instance_key("challenge", "x" * 400)
    assert long == "challenge:sha256:" + __import__("hashlib").sha256(b"x" * 400).hexdigest()
    assert len(long) <= MAX_INSTANCE
