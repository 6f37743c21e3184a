"""Property tests of the period maths in Europe/Rome, weighted towards the DST changes.

Derandomized (the same examples on every run) and small enough to stay fast.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.periods import (
    PeriodKind,
    first_day_of,
    instance_bounds,
    instance_end,
    instance_of,
    local_day,
    local_midnight,
    next_period_start_day,
    period_bounds,
    period_id,
    periods_between,
    streak_period_of,
)

PROPERTIES = settings(max_examples=150, deadline=None, derandomize=True, database=None)
ROME = ZoneInfo("Europe/Rome")
KINDS = [PeriodKind.DAILY, PeriodKind.WEEKLY, PeriodKind.MONTHLY]
#: The hours around each change of 2025–2027, where a local day is 23 or 25 hours long.
_DST = [
    datetime(2025, 3, 30, 1, tzinfo=UTC),
    datetime(2025, 10, 26, 1, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),
    datetime(2027, 10, 31, 1, tzinfo=UTC),
]
_ANY = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
_NEAR_DST = st.builds(
    lambda change, seconds: change + timedelta(seconds=seconds),
    st.sampled_from(_DST),
    st.integers(min_value=-3 * 86_400, max_value=3 * 86_400),
)
INSTANTS = st.one_of(_ANY, _NEAR_DST)


@PROPERTIES
@given(instant=INSTANTS)
def test_a_local_day_runs_from_its_midnight_to_the_next_and_lasts_23_24_or_25_hours(instant):
    day = local_day(instant, ROME)
    start, end = local_midnight(day, ROME), local_midnight(day + timedelta(days=1), ROME)
    assert start <= instant < end
    assert end - start in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
    assert local_day(start, ROME) == day
    assert local_day(end - timedelta(microseconds=1), ROME) == day


@pytest.mark.parametrize("kind", KINDS)
@PROPERTIES
@given(instant=INSTANTS)
def test_a_period_contains_its_instants_and_ends_where_the_next_begins(kind, instant):
    start, end = period_bounds(kind, instant, ROME)
    assert start is not None
    assert end is not None
    assert start <= instant < end
    first, following = local_day(start, ROME), local_day(end, ROME)
    assert local_midnight(first, ROME) == start  # periods start at a local midnight…
    assert following == next_period_start_day(kind, first)  # …and end at the next period's
    if kind is PeriodKind.WEEKLY:
        assert first.weekday() == 0
    if kind is PeriodKind.MONTHLY:
        assert first.day == 1
    assert period_bounds(kind, end, ROME)[0] == end
    assert period_id(kind, start, ROME) == period_id(kind, instant, ROME) != period_id(kind, end, ROME)
    assert first_day_of(kind, period_id(kind, instant, ROME)) == first


@pytest.mark.parametrize("recurrence", ["none", "daily", "weekly", "monthly"])
@PROPERTIES
@given(instant=INSTANTS)
def test_an_instance_ends_where_its_bounds_say(recurrence, instant):
    instance = instance_of(recurrence, instant, ROME)
    start, end = instance_bounds(recurrence, instant, ROME)
    assert instance_end(recurrence, instance, ROME) == end
    assert (instance == "") is (recurrence == "none") is (start is None)


@pytest.mark.parametrize("period", ["day", "week"])
@PROPERTIES
@given(instant=INSTANTS, later=st.integers(min_value=0, max_value=400))
def test_streak_periods_count_calendar_days_and_weeks_not_hours(period, instant, later):
    first = streak_period_of(instant, period, ROME)
    moved = streak_period_of(instant + timedelta(days=later), period, ROME)
    step = 1 if period == "day" else 7
    # a day later in UTC can be the same or the next local day around a change, never two
    assert periods_between(first, moved, period) in range(later // step - 1, later // step + 2)
    assert periods_between(first, first + timedelta(days=step), period) == 1
    assert (moved - first).days % step == 0
