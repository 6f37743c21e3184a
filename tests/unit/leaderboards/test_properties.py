"""Properties of the pure leaderboard arithmetic (hypothesis): ranks by tie policy, windows, pages, scores, periods."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.periods import (
    PeriodKind,
    bounds_of_period_id,
    first_day_of,
    period_id_of_day,
    period_start_day,
    retention_seconds,
)
from leaderboards import ranking
from leaderboards.models import MAX_ABS_SCORE, BoardDef, PeriodRef, PointsMetric

WEEK = PeriodRef(
    id="2026-W47", starts_at=datetime(2026, 11, 15, 23, tzinfo=UTC), ends_at=datetime(2026, 11, 22, 23, tzinfo=UTC)
)
ZONES = [ZoneInfo(name) for name in ("Europe/Rome", "America/New_York", "Asia/Kathmandu", "Pacific/Apia", "UTC")]
TIES = ["competition", "dense", "first_to_reach"]

ties = st.sampled_from(TIES)
orders = st.sampled_from(["desc", "asc"])
zones = st.sampled_from(ZONES)
instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC))


@st.composite
def standings(draw: st.DrawFn, *, max_size: int = 30) -> list[tuple[int, int, int]]:
    """(member id, units, seconds after the week's start): unique members, few distinct scores (many ties)."""
    members = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=max_size))
    scores = draw(st.lists(st.integers(-50, 50), min_size=1, max_size=6))
    return [(m, draw(st.sampled_from(scores)), draw(st.integers(0, 7 * 86400 - 1))) for m in members]


def board(**fields: object) -> BoardDef:
    return BoardDef(id=1, key="b", title="B", metric=PointsMetric(), period="weekly", **fields)  # type: ignore[arg-type]


def placed_of(b: BoardDef, totals: list[tuple[int, int, int]]) -> list[ranking.Placed]:
    scored = [(m, ranking.redis_score(b, WEEK, u, WEEK.starts_at + timedelta(seconds=t))) for m, u, t in totals]
    return ranking.place(b, WEEK, scored)


@given(totals=standings(), policy=ties, order=orders)
def test_place_ranks_every_member_by_the_tie_policy(totals, policy, order):
    b = board(ties=policy, order=order)
    placed = placed_of(b, totals)
    assert [p.position for p in placed] == list(range(len(totals)))
    assert {p.member_id: p.units for p in placed} == {m: u for m, u, _ in totals}
    signed = [ranking.signed(b, p.units) for p in placed]
    assert signed == sorted(signed, reverse=True)  # best first
    assert [p.rank for p in placed] == sorted(p.rank for p in placed)
    for p in placed:
        better = [q for q in placed if ranking.better(b, q.units, p.units)]
        if policy == "competition":
            assert p.rank == len(better) + 1
        elif policy == "dense":
            assert p.rank == len({q.units for q in better}) + 1
        else:
            assert p.rank == p.position + 1
    if policy == "first_to_reach":  # equal scores: who reached it first is ahead
        reached = {m: t for m, _u, t in totals}
        for ahead, behind in itertools.pairwise(placed):
            if ahead.units == behind.units:
                assert reached[ahead.member_id] <= reached[behind.member_id]


@given(totals=standings(max_size=20), policy=ties, data=st.data())
def test_rank_window_agrees_with_the_full_ranking_on_any_slice(totals, policy, data):
    b = board(ties=policy)
    full = placed_of(b, totals)
    if not full:
        assert ranking.rank_window(b, start=0, before=None, window=[], known={}) == []
        return
    start = data.draw(st.integers(0, len(full) - 1))
    stop = data.draw(st.integers(start, len(full) - 1))
    window = [(p.member_id, p.units) for p in full[start : stop + 1]]
    before = full[start - 1].units if start else None
    known: dict[int, int] = {}
    for _ in range(len(window) + 1):  # each count asked for is given once; it never asks for more than that
        result = ranking.rank_window(b, start=start, before=before, window=window, known=known)
        if not isinstance(result, int):
            break
        assert result not in known
        known[result] = next(p.rank for p in full if p.units == result)
    assert result == full[start : stop + 1]


@given(total=st.integers(0, 500), k=st.integers(0, 30), data=st.data())
def test_around_window_holds_the_member_and_stays_full_at_the_edges(total, k, data):
    if total == 0:
        assert ranking.around_bounds(0, k, total) == (0, -1)
        return
    position = data.draw(st.integers(0, total - 1))
    start, stop = ranking.around_bounds(position, k, total)
    assert 0 <= start <= position <= stop <= total - 1
    assert stop - start + 1 == min(2 * k + 1, total)
    if k <= position <= total - 1 - k:  # room on both sides: centred on the member
        assert (start, stop) == (position - k, position + k)


@given(total=st.integers(1, 10**6), data=st.data())
def test_percentile_is_100_at_the_top_and_falls_with_the_rank(total, data):
    rank = data.draw(st.integers(1, total))
    assert ranking.percentile(1, total) == 100.0
    assert 0 <= ranking.percentile(rank, total) <= 100.0  # 2 decimals: the last of a huge board shows 0
    if rank < total:
        assert ranking.percentile(rank + 1, total) <= ranking.percentile(rank, total)


@given(
    policy=ties,
    order=orders,
    units=st.integers(-MAX_ABS_SCORE, MAX_ABS_SCORE),
    seconds=st.integers(-86400, 8 * 86400),
)
def test_redis_scores_decode_to_their_units_exactly(policy, order, units, seconds):
    b = board(ties=policy, order=order)
    score = ranking.redis_score(b, WEEK, units, WEEK.starts_at + timedelta(seconds=seconds))
    assert score == int(score)  # an integer the double holds exactly (past 2^53 only multiples of the tie span)
    assert ranking.units_from_score(b, WEEK, score) == units


@given(
    a=st.integers(-(10**9), 10**9),
    b_=st.integers(-(10**9), 10**9),
    t1=st.integers(0, 604_799),
    t2=st.integers(0, 604_799),
)
def test_first_to_reach_scores_order_by_units_then_by_who_reached_first(a, b_, t1, t2):
    b = board(ties="first_to_reach")
    s1 = ranking.redis_score(b, WEEK, a, WEEK.starts_at + timedelta(seconds=t1))
    s2 = ranking.redis_score(b, WEEK, b_, WEEK.starts_at + timedelta(seconds=t2))
    if a != b_:
        assert (s1 > s2) == (a > b_)
    else:
        assert (s1 > s2) == (t1 < t2) and (s1 == s2) == (t1 == t2)


@given(
    contributions=st.lists(st.tuples(st.integers(-(10**6), 10**6), st.integers(0, 10**6)), min_size=1, max_size=12),
    mode=st.sampled_from(["increment", "best", "latest"]),
    order=orders,
)
def test_merging_contributions_does_not_depend_on_their_order_but_for_latest(contributions, mode, order):
    b = board(mode=mode, order=order)
    at = [(units, WEEK.starts_at + timedelta(seconds=s)) for units, s in contributions]

    def fold(items: list[tuple[int, datetime]]) -> tuple[int, datetime] | None:
        total: tuple[int, datetime] | None = None
        for units, when in items:
            total = ranking.merge(b, total, units, when)
        return total

    forward, backward = fold(at), fold(list(reversed(at)))
    if mode == "increment":
        assert (forward[0] if forward else 0) == sum(u for u, _ in at)
        assert forward == backward
    elif mode == "best":
        best = max(u for u, _ in at) if order == "desc" else min(u for u, _ in at)
        assert forward == backward == (best, min(w for u, w in at if u == best))
    else:
        latest = max(w for _u, w in at)
        assert forward is not None and forward[1] == latest
        assert forward[0] in {u for u, w in at if w == latest}


@given(instant=instants, tz=zones, period=st.sampled_from(["daily", "weekly", "monthly", "all_time"]))
def test_a_period_holds_its_instant_and_its_id_names_it_back(instant, tz, period):
    b = BoardDef(id=1, key="b", title="B", metric=PointsMetric(), period=period)
    found = ranking.period_for(b, instant, tz)
    assert found is not None
    assert ranking.period_from_id(b, found.id, tz) == found
    if period == "all_time":
        assert (found.id, found.starts_at, found.ends_at) == ("all", None, None)
        return
    assert found.starts_at is not None and found.ends_at is not None
    assert found.starts_at <= instant < found.ends_at
    following = ranking.period_for(b, found.ends_at, tz)
    assert following is not None and following.starts_at == found.ends_at and following.id > found.id


@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 1)), kind=st.sampled_from(list(PeriodKind)))
def test_period_ids_parse_back_to_the_first_day_of_their_period(day, kind):
    pid = period_id_of_day(kind, day)
    assert first_day_of(kind, pid) == period_start_day(kind, day)


@given(pid=st.text(max_size=12), kind=st.sampled_from(list(PeriodKind)), tz=zones)
def test_a_malformed_period_id_is_refused_not_guessed(pid, kind, tz):
    try:
        bounds_of_period_id(kind, pid, tz)
    except ValueError:
        return
    # Whatever parses is the canonical spelling of a period of that kind.
    assert period_id_of_day(kind, first_day_of(kind, pid)) == pid


@given(
    closed_at=instants,
    days=st.integers(0, 3650),
    elapsed=st.integers(-(10**6), 4000 * 86400),
)
def test_retention_counts_down_to_at_least_a_second(closed_at, days, elapsed):
    now = closed_at + timedelta(seconds=elapsed)
    left = retention_seconds(closed_at, days, now)
    assert left >= 1
    assert left == max(days * 86400 - elapsed, 1)


@pytest.mark.parametrize("kind", [PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY])
def test_period_ids_have_one_spelling(kind):
    for bad in ("2026-1-5", "2026-W7", "2026-3", "26-11-22", "all", "", "2026-11-22T00"):
        with pytest.raises(ValueError):  # noqa: PT011 - the parsers' own errors carry no common message
            bounds_of_period_id(kind, bad, ZONES[0])
