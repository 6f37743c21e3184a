"""Pure leaderboard arithmetic: ranks by tie policy, windows, composite scores, periods, labels."""

from __future__ import annotations

import fnmatch
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.effects import ChallengeCompleted, PointsAwarded
from engine.errors import ValidationError
from leaderboards import keys, ranking
from leaderboards.models import (
    BoardDef,
    ChallengeCompletionsMetric,
    EventCountMetric,
    MemberInfo,
    PeriodRef,
    PointsFromMetric,
    PointsMetric,
    PropertySumMetric,
)

ROME = ZoneInfo("Europe/Rome")
WEEK = PeriodRef(
    id="2026-W47", starts_at=datetime(2026, 11, 15, 23, tzinfo=UTC), ends_at=datetime(2026, 11, 22, 23, tzinfo=UTC)
)


def board(**fields) -> BoardDef:
    return BoardDef(id=1, key="b", title="B", metric=fields.pop("metric", PointsMetric()), period="weekly", **fields)


def scored(b: BoardDef, totals: list[tuple[int, int, int]]) -> list[tuple[int, float]]:
    """(member, units, minutes after the period start) → (member, Redis score)."""
    return [(m, ranking.redis_score(b, WEEK, u, WEEK.starts_at + timedelta(minutes=t))) for m, u, t in totals]


@pytest.mark.parametrize(
    ("ties", "order", "expected"),
    [
        ("competition", "desc", [(4, 1), (3, 2), (2, 2), (1, 4), (5, 5)]),
        ("dense", "desc", [(4, 1), (3, 2), (2, 2), (1, 3), (5, 4)]),
        ("first_to_reach", "desc", [(4, 1), (2, 2), (3, 3), (1, 4), (5, 5)]),
        ("competition", "asc", [(5, 1), (1, 2), (3, 3), (2, 3), (4, 5)]),
        ("first_to_reach", "asc", [(5, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),
    ],
)
def test_place_ranks_by_policy(ties, order, expected):
    b = board(ties=ties, order=order)
    totals = [(1, 10, 5), (2, 20, 1), (3, 20, 9), (4, 30, 0), (5, -4, 3)]
    placed = ranking.place(b, WEEK, scored(b, totals))
    assert [(p.member_id, p.rank) for p in placed] == expected
    assert [p.position for p in placed] == [0, 1, 2, 3, 4]
    assert {p.member_id: p.units for p in placed} == {m: u for m, u, _ in totals}


@pytest.mark.parametrize("ties", ["competition", "dense", "first_to_reach"])
def test_rank_window_agrees_with_a_full_ranking_for_every_slice(ties):
    b = board(ties=ties)
    totals = [(m, units, m) for m, units in enumerate([50, 40, 40, 40, 30, 20, 20, 10, 10, 5], start=1)]
    full = ranking.place(b, WEEK, scored(b, totals))
    for start in range(len(full)):
        for stop in range(start, len(full)):
            window = [(p.member_id, p.units) for p in full[start : stop + 1]]
            before = full[start - 1].units if start else None
            known: dict[int, int] = {}
            while True:
                result = ranking.rank_window(b, start=start, before=before, window=window, known=known)
                if not isinstance(result, int):
                    break
                known[result] = next(p.rank for p in full if p.units == result)
            assert result == full[start : stop + 1]


@pytest.mark.parametrize(
    ("position", "k", "total", "expected"),
    [
        (0, 2, 12, (0, 4)),
        (11, 2, 12, (7, 11)),
        (5, 2, 12, (3, 7)),
        (1, 5, 4, (0, 3)),
        (0, 0, 1, (0, 0)),
        (0, 3, 0, (0, -1)),
    ],
)
def test_around_bounds_keep_the_window_full_at_the_edges(position, k, total, expected):
    assert ranking.around_bounds(position, k, total) == expected


def test_composite_score_orders_by_score_then_reach_time_and_decodes_exactly():
    b = board(ties="first_to_reach")
    early, late = WEEK.starts_at + timedelta(seconds=1), WEEK.starts_at + timedelta(days=6)
    assert ranking.redis_score(b, WEEK, 100, early) > ranking.redis_score(b, WEEK, 100, late)
    assert ranking.redis_score(b, WEEK, 101, late) > ranking.redis_score(b, WEEK, 100, early)
    for units in (0, 1, -1, 123_456, -987_654, (1 << 33) - 1):
        for at in (early, late, WEEK.starts_at - timedelta(days=1), WEEK.ends_at + timedelta(days=1)):
            score = ranking.redis_score(b, WEEK, units, at)
            assert score == int(score) and abs(score) < 2**53
            assert ranking.units_from_score(b, WEEK, score) == units


def test_beyond_the_precision_budget_the_score_stays_exact_and_the_tie_break_goes():
    b = board(ties="first_to_reach")
    big = 1 << 40  # over 2^(53-20) for a weekly board
    a = ranking.redis_score(b, WEEK, big, WEEK.starts_at)
    later = ranking.redis_score(b, WEEK, big, WEEK.starts_at + timedelta(days=3))
    assert a == later
    assert ranking.units_from_score(b, WEEK, a) == big
    assert ranking.units_from_score(b, WEEK, ranking.redis_score(b, WEEK, big + 1, WEEK.starts_at)) == big + 1


@pytest.mark.parametrize(
    ("period", "instant", "expected"),
    [
        ("weekly", datetime(2026, 11, 22, 22, 59, tzinfo=UTC), "2026-W47"),
        ("weekly", datetime(2026, 11, 22, 23, 0, tzinfo=UTC), "2026-W48"),
        ("daily", datetime(2026, 3, 28, 23, 30, tzinfo=UTC), "2026-03-29"),
        ("monthly", datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "2026-12"),
        ("all_time", datetime(2026, 1, 1, tzinfo=UTC), "all"),
    ],
)
def test_periods_are_cut_in_the_brand_timezone(period, instant, expected):
    b = BoardDef(id=1, key="b", title="B", metric=PointsMetric(), period=period)
    found = ranking.period_for(b, instant, ROME)
    assert found is not None and found.id == expected
    assert ranking.period_from_id(b, expected, ROME) == found


def test_window_boards_count_only_inside_the_window():
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    b = BoardDef(id=1, key="b", title="B", metric=PointsMetric(), period="window", starts_at=start, ends_at=end)
    assert ranking.period_for(b, start - timedelta(seconds=1), ROME) is None
    assert ranking.period_for(b, end, ROME) is None
    assert ranking.period_for(b, start, ROME) == PeriodRef(id="window", starts_at=start, ends_at=end)


@pytest.mark.parametrize("bad", ["2026-W47", "2026-13", "26-11", "2026-11-31", "current", ""])
def test_bad_period_ids_are_rejected(bad):
    with pytest.raises(ValidationError) as info:
        ranking.period_from_id(BoardDef(id=1, key="b", title="B", metric=PointsMetric(), period="monthly"), bad, ROME)
    assert info.value.field == "period"


POINTS = [
    PointsAwarded(points=10, source="rule", key="visit"),
    PointsAwarded(points=5, source="challenge", key="c1"),
]


@pytest.mark.parametrize(
    ("metric", "event_type", "properties", "effects", "expected"),
    [
        (PointsMetric(), "visit", {}, POINTS, 15),
        (PointsMetric(), "visit", {}, [], None),
        (PointsFromMetric(source="challenge"), "visit", {}, POINTS, 5),
        (PointsFromMetric(source="rule", key="other"), "visit", {}, POINTS, None),
        (EventCountMetric(event_type="visit"), "visit", {}, [], 1),
        (EventCountMetric(event_type="visit"), "purchase", {}, [], None),
        (PropertySumMetric(event_type="purchase", property="amount"), "purchase", {"amount": 12.5}, [], 12),
        (PropertySumMetric(event_type="purchase", property="amount"), "purchase", {"amount": True}, [], None),
        (PropertySumMetric(event_type="purchase", property="amount"), "purchase", {"amount": "3"}, [], None),
        (
            ChallengeCompletionsMetric(),
            "x",
            {},
            [ChallengeCompleted(challenge="c1"), ChallengeCompleted(challenge="c2")],
            2,
        ),
        (ChallengeCompletionsMetric(challenge="c2"), "x", {}, [ChallengeCompleted(challenge="c1")], None),
    ],
)
def test_contribution_of_each_metric(metric, event_type, properties, effects, expected):
    b = BoardDef(id=1, key="b", title="B", metric=metric)
    assert ranking.contribution(b, event_type=event_type, properties=properties, member={}, effects=effects) == expected


def test_decimals_keep_property_sums_exact():
    b = BoardDef(id=1, key="b", title="B", metric=PropertySumMetric(event_type="p", property="v"), decimals=2)
    units = [ranking.contribution(b, event_type="p", properties={"v": v}, member={}, effects=[]) for v in (0.1, 0.2)]
    assert units == [10, 20]
    assert ranking.display_score(b, sum(u for u in units if u is not None)) == 0.3


@pytest.mark.parametrize(
    ("mode", "order", "steps", "expected"),
    [
        ("increment", "desc", [(5, 1), (0, 2), (3, 3)], (8, 3)),
        ("best", "desc", [(5, 1), (9, 3), (9, 2), (4, 4)], (9, 2)),
        ("best", "asc", [(5, 1), (9, 3), (3, 5)], (3, 5)),
        ("latest", "desc", [(5, 4), (9, 3), (1, 5)], (1, 5)),
    ],
)
def test_merge_follows_the_mode(mode, order, steps, expected):
    b = board(mode=mode, order=order)
    base = datetime(2026, 11, 20, tzinfo=UTC)
    current = None
    for units, minute in steps:
        current = ranking.merge(b, current, units, base + timedelta(minutes=minute))
    assert current == (expected[0], base + timedelta(minutes=expected[1]))


@pytest.mark.parametrize(
    ("policy", "choice", "name", "pseudonym", "expected"),
    [
        ("full_name", "", "Giulia Rossi", "", "Giulia Rossi"),
        ("initials", "", "Giulia Rossi", "", "G. R."),
        ("full_name", "initials", "Giulia Rossi", "", "G. R."),
        ("full_name", "pseudonym", "Giulia Rossi", "Caffeina", "Caffeina"),
        ("pseudonym", "full_name", "Giulia Rossi", "", ranking.pseudonym_for(1, 2)),
        ("full_name", "", "", "", ranking.pseudonym_for(1, 2)),
    ],
)
def test_labels_take_the_more_private_of_board_and_member(policy, choice, name, pseudonym, expected):
    got = ranking.label(policy=policy, choice=choice, display_name=name, pseudonym=pseudonym, brand_id=1, member_id=2)
    assert got == expected


@pytest.mark.parametrize(
    ("display", "choice", "pseudonym", "expected"),
    [
        ("full_name", "", "", "Giulia Rossi"),
        ("initials", "", "", "G. R."),
        ("full_name", "pseudonym", "Caffeina", "Caffeina"),
        ("pseudonym", "", "", ranking.pseudonym_for(1, 2)),
    ],
)
def test_member_label_applies_the_board_policy_to_a_member(display, choice, pseudonym, expected):
    info = MemberInfo(member_id=2, external_id="a", display_name="Giulia Rossi", display=choice, pseudonym=pseudonym)
    assert ranking.member_label(board(display=display), info, brand_id=1) == expected


def test_every_key_of_a_brand_shares_its_hash_tag():
    names = [
        keys.standings("ql", 7, "weekly", "2026-W47", "milano centro"),
        keys.distinct_scores("ql", 7, "weekly", "2026-W47"),
        keys.score_counts("ql", 7, "ready", "2026-W47"),
        keys.board_ready("ql", 7, "weekly"),
        keys.board_ready("ql", 7, "ready"),
        keys.member_ids("ql", 7),
        keys.people("ql", 7),
        keys.ready("ql", 7),
        keys.rebuild_lock("ql", 7),
        keys.rebuild_log("ql", 7),
    ]
    assert {n[n.index("{") : n.index("}") + 1] for n in names} == {"{b7}"}
    assert len(set(names)) == len(names)
    assert all(n.startswith("ql:lb:{b7}:") for n in names)
    # Board keys match the brand's board pattern; the directory, sentinel, lock and log do not.
    board_keys = [n for n in names if fnmatch.fnmatchcase(n, keys.brand_pattern("ql", 7))]
    assert board_keys == names[:5]


def test_minimum_score_and_percentile():
    b = board(min_score=2.5, decimals=1)
    assert b.min_units == 25
    assert not ranking.qualifies(b, 24) and ranking.qualifies(b, 25)
    assert ranking.percentile(1, 4) == 100.0 and ranking.percentile(4, 4) == 25.0


def test_pure_modules_import_no_io_libraries():
    for name in ("leaderboards.models", "leaderboards.ranking", "leaderboards.keys"):
        assert name in sys.modules or __import__(name)
    import subprocess

    code = (
        "import sys, leaderboards.models, leaderboards.ranking, leaderboards.keys;"
        "bad=[m for m in ('sqlalchemy','redis','httpx') if m in sys.modules];print(bad);sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
