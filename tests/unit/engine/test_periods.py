from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.errors import ValidationError
from engine.periods import PeriodKind, in_window, local_day, local_midnight, period_bounds, period_id, zone

ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(
    ("instant", "kind", "expected"),
    [
        (datetime(2026, 11, 22, 22, 30, tzinfo=UTC), PeriodKind.DAILY, "2026-11-22"),
        (datetime(2026, 11, 22, 23, 30, tzinfo=UTC), PeriodKind.DAILY, "2026-11-23"),  # already Monday in Rome
        (datetime(2026, 11, 22, 22, 59, tzinfo=UTC), PeriodKind.WEEKLY, "2026-W47"),
        (datetime(2026, 11, 22, 23, 0, tzinfo=UTC), PeriodKind.WEEKLY, "2026-W48"),
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), PeriodKind.MONTHLY, "2026-12"),
        (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), PeriodKind.WEEKLY, "2026-W53"),
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), PeriodKind.ALL_TIME, "all"),
    ],
)
def test_period_id_in_brand_time(instant, kind, expected):
    assert period_id(kind, instant, ROME) == expected


def test_dst_days_have_23_and_25_hours():
    spring = local_midnight(date(2026, 3, 30), ROME) - local_midnight(date(2026, 3, 29), ROME)
    autumn = local_midnight(date(2026, 10, 26), ROME) - local_midnight(date(2026, 10, 25), ROME)
    assert spring.total_seconds() == 23 * 3600
    assert autumn.total_seconds() == 25 * 3600


def test_week_bounds_cross_dst():
    start, end = period_bounds(PeriodKind.WEEKLY, datetime(2026, 10, 25, 12, tzinfo=UTC), ROME)
    assert start == datetime(2026, 10, 18, 22, tzinfo=UTC)  # Monday 19 Oct 00:00 CEST
    assert end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # Monday 26 Oct 00:00 CET


def test_window_end_is_exclusive():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 1, tzinfo=UTC)
    assert in_window(start, start, end)
    assert not in_window(end, start, end)
    assert in_window(end, start, None)


def test_local_day():
    assert local_day(datetime(2026, 6, 30, 22, 30, tzinfo=UTC), ROME) == date(2026, 7, 1)


def test_unknown_zone():
    with pytest.raises(ValidationError):
        zone("Mars/Olympus")
