"""Pure time maths for challenges: recurrence instances and streak periods, in the brand's timezone.

Built on :mod:`engine.periods`. Streak gaps are counted in local calendar days (or ISO weeks), never
as 24-hour differences, so the 23- and 25-hour days of a DST change neither break nor fake a streak.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from engine.periods import (
    PeriodKind,
    local_day,
    local_midnight,
    next_period_start_day,
    period_id_of_day,
    period_start_day,
)

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from challenges.models import Recurrence, StreakPeriod

_KINDS: dict[str, PeriodKind] = {
    "daily": PeriodKind.DAILY,
    "weekly": PeriodKind.WEEKLY,
    "monthly": PeriodKind.MONTHLY,
}


def instance_of(recurrence: Recurrence, instant: datetime, tz: ZoneInfo) -> str:
    """The instance of a challenge that ``instant`` falls in: ``""`` for one-off, else the period's id."""
    kind = _KINDS.get(recurrence)
    return "" if kind is None else period_id_of_day(kind, local_day(instant, tz))


def instance_bounds(recurrence: Recurrence, instant: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` of the instance containing ``instant``; open bounds for one-off."""
    kind = _KINDS.get(recurrence)
    if kind is None:
        return None, None
    day = local_day(instant, tz)
    return local_midnight(period_start_day(kind, day), tz), local_midnight(next_period_start_day(kind, day), tz)


@lru_cache(maxsize=4096)  # pruning asks for the same few instances' ends for every member
def instance_end(recurrence: Recurrence, instance: str, tz: ZoneInfo) -> datetime | None:
    """The UTC end (exclusive) of a recurring challenge's instance, from its id; ``None`` for one-off."""
    kind = _KINDS.get(recurrence)
    if kind is None or not instance:
        return None
    if kind is PeriodKind.DAILY:
        first = date.fromisoformat(instance)
    elif kind is PeriodKind.WEEKLY:
        year, _, week = instance.partition("-W")
        first = date.fromisocalendar(int(year), int(week), 1)
    else:
        year, _, month = instance.partition("-")
        first = date(int(year), int(month), 1)
    return local_midnight(next_period_start_day(kind, first), tz)


def streak_period_of(instant: datetime, period: StreakPeriod, tz: ZoneInfo) -> date:
    """The first local day of the streak period (day, or Monday of the ISO week) containing ``instant``."""
    day = local_day(instant, tz)
    return day if period == "day" else day - timedelta(days=day.weekday())


def periods_between(earlier: date, later: date, period: StreakPeriod) -> int:
    """How many whole periods separate two period start days (1 for consecutive days or weeks)."""
    days = (later - earlier).days
    return days if period == "day" else days // 7
