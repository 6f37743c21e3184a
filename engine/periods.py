"""Pure period and window arithmetic in a brand's timezone: the one home of local-day maths.

Every instant Questline stores is UTC; every day, week and month a member or brand sees is local to
the brand. These helpers convert between the two without touching I/O, so a DST change can neither
break nor fake a day.

- local days: :func:`local_day`, :func:`local_midnight`;
- periods (daily, ISO-weekly, monthly, all time): :func:`period_start_day`, :func:`next_period_start_day`,
  :func:`period_id` / :func:`period_id_of_day` (``2026-11-22``, ``2026-W47``, ``2026-11``),
  :func:`first_day_of` (an id back to its first day), :func:`period_bounds`, :func:`in_window`;
- recurring instances (a recurrence ``none | daily | weekly | monthly``, ``""`` for one-off):
  :func:`instance_of`, :func:`instance_bounds`, :func:`instance_end`;
- streak periods (``day | week``), counted in calendar days or ISO weeks, never 24-hour differences:
  :func:`streak_period_of`, :func:`periods_between`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.errors import ValidationError


class PeriodKind(StrEnum):
    """How time is cut into periods."""

    ALL_TIME = "all_time"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def zone(name: str) -> ZoneInfo:
    """Return the IANA timezone ``name``.

    Raises:
        ValidationError: the name is not a known IANA timezone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown timezone {name!r}", field="timezone") from exc


#: Recent results of :func:`local_day`: the pipeline asks for the same event's day once per rule and challenge,
#: and a timezone conversion costs several times a cache hit. Keys are (instant, zone): equal
#: instants give the same local day whatever their UTC offset, so sharing an entry is always right.
_CACHED_INSTANTS = 8192


@lru_cache(maxsize=_CACHED_INSTANTS)
def local_day(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar day ``instant`` falls on in ``tz``."""
    return instant.astimezone(tz).date()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` starts in ``tz`` (handles DST: a day may be 23 or 25 hours)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_start_day(kind: PeriodKind, day: date) -> date:
    """The first local day of the period of ``kind`` that contains ``day`` (weeks start on Monday)."""
    match kind:
        case PeriodKind.DAILY:
            return day
        case PeriodKind.WEEKLY:
            return day - timedelta(days=day.weekday())
        case PeriodKind.MONTHLY:
            return day.replace(day=1)
        case PeriodKind.ALL_TIME:
            return date.min


def next_period_start_day(kind: PeriodKind, day: date) -> date:
    """The first local day of the period after the one containing ``day``."""
    start = period_start_day(kind, day)
    match kind:
        case PeriodKind.DAILY:
            return start + timedelta(days=1)
        case PeriodKind.WEEKLY:
            return start + timedelta(days=7)
        case PeriodKind.MONTHLY:
            return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        case PeriodKind.ALL_TIME:
            return date.max


def period_id(kind: PeriodKind, instant: datetime, tz: ZoneInfo) -> str:
    """A stable, sortable name for the period containing ``instant``.

    ``all``, ``2026-11-22`` (daily), ``2026-W47`` (ISO week), ``2026-11`` (monthly).
    """
    return period_id_of_day(kind, local_day(instant, tz))


@lru_cache(maxsize=4096)  # events cluster on few days: formatting the name once per day and kind is enough
def period_id_of_day(kind: PeriodKind, day: date) -> str:
    """:func:`period_id` of the period containing the local ``day``."""
    match kind:
        case PeriodKind.ALL_TIME:
            return "all"
        case PeriodKind.DAILY:
            return day.isoformat()
        case PeriodKind.WEEKLY:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        case PeriodKind.MONTHLY:
            return f"{day.year}-{day.month:02d}"


def period_bounds(kind: PeriodKind, instant: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` of the period containing ``instant``; ``(None, None)`` for all time."""
    if kind is PeriodKind.ALL_TIME:
        return None, None
    return _day_period_bounds(kind, local_day(instant, tz), tz)


@lru_cache(maxsize=4096)  # screening late events asks for the same few periods for every event and challenge
def _day_period_bounds(kind: PeriodKind, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """:func:`period_bounds` of the period containing the local ``day``."""
    return local_midnight(period_start_day(kind, day), tz), local_midnight(next_period_start_day(kind, day), tz)


def in_window(instant: datetime, starts_at: datetime | None, ends_at: datetime | None) -> bool:
    """Whether ``instant`` lies in ``[starts_at, ends_at)``; a missing bound is open."""
    if starts_at is not None and instant < starts_at:
        return False
    return not (ends_at is not None and instant >= ends_at)


def first_day_of(kind: PeriodKind, pid: str) -> date:
    """The first local day of the period named ``pid`` (as :func:`period_id_of_day` names it; ``date.min`` for all time).

    Raises:
        ValueError: ``pid`` is not such a period's id.
    """
    match kind:
        case PeriodKind.DAILY:
            if len(pid) != 10:
                raise ValueError(pid)
            return date.fromisoformat(pid)
        case PeriodKind.WEEKLY:
            year, _, week = pid.partition("-W")
            if len(year) != 4 or len(week) != 2:
                raise ValueError(pid)
            return date.fromisocalendar(int(year), int(week), 1)
        case PeriodKind.MONTHLY:
            year, _, month = pid.partition("-")
            if len(year) != 4 or len(month) != 2:
                raise ValueError(pid)
            return date(int(year), int(month), 1)
        case PeriodKind.ALL_TIME:
            if pid == "all":
                return date.min
    raise ValueError(pid)


# --- recurring instances and streak periods ------------------------------------------------------------

#: The period kind of each recurrence (``none``, one-off, has none).
RECURRENCE_KINDS: dict[str, PeriodKind] = {
    "daily": PeriodKind.DAILY,
    "weekly": PeriodKind.WEEKLY,
    "monthly": PeriodKind.MONTHLY,
}


def instance_of(recurrence: str, instant: datetime, tz: ZoneInfo) -> str:
    """The instance of a recurrence that ``instant`` falls in: ``""`` for one-off, else the period's id."""
    kind = RECURRENCE_KINDS.get(recurrence)
    return "" if kind is None else period_id_of_day(kind, local_day(instant, tz))


def instance_bounds(recurrence: str, instant: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` of the instance containing ``instant``; open bounds for one-off."""
    kind = RECURRENCE_KINDS.get(recurrence)
    return (None, None) if kind is None else period_bounds(kind, instant, tz)


@lru_cache(maxsize=4096)  # pruning asks for the same few instances' ends for every member
def instance_end(recurrence: str, instance: str, tz: ZoneInfo) -> datetime | None:
    """The UTC end (exclusive) of a recurring instance, from its id; ``None`` for one-off."""
    kind = RECURRENCE_KINDS.get(recurrence)
    if kind is None or not instance:
        return None
    return local_midnight(next_period_start_day(kind, first_day_of(kind, instance)), tz)


def streak_period_of(instant: datetime, period: str, tz: ZoneInfo) -> date:
    """The first local day of the streak period (``day``, or Monday of the ISO ``week``) containing ``instant``."""
    day = local_day(instant, tz)
    return day if period == "day" else day - timedelta(days=day.weekday())


def periods_between(earlier: date, later: date, period: str) -> int:
    """How many whole streak periods separate two period start days (1 for consecutive days or weeks)."""
    days = (later - earlier).days
    return days if period == "day" else days // 7


# --- period ids and retention (moved from leaderboards/ranking.py) --------------------------------------
# Appended as one section: the id ↔ bounds parsing a board's period reads and the retention of a closed
# period, so every period and local-day calculation lives in this module.

#: How each kind's period id is spelled (for error messages).
PERIOD_ID_FORMATS = {
    PeriodKind.ALL_TIME: "all",
    PeriodKind.DAILY: "YYYY-MM-DD",
    PeriodKind.WEEKLY: "YYYY-Www",
    PeriodKind.MONTHLY: "YYYY-MM",
}


def period_span(kind: PeriodKind, instant: datetime, tz: ZoneInfo) -> tuple[str, datetime | None, datetime | None]:
    """The id and UTC ``[start, end)`` of the period of ``kind`` containing ``instant``."""
    starts_at, ends_at = period_bounds(kind, instant, tz)
    return period_id(kind, instant, tz), starts_at, ends_at


def bounds_of_period_id(kind: PeriodKind, pid: str, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """The UTC ``[start, end)`` of the period named ``pid``; ``(None, None)`` for all time.

    Raises:
        ValueError: ``pid`` is not spelled as a period id of ``kind``.
    """
    day = first_day_of(kind, pid)
    if kind is PeriodKind.ALL_TIME:
        return None, None
    return local_midnight(day, tz), local_midnight(next_period_start_day(kind, day), tz)


def retention_seconds(closed_at: datetime, retention_days: int, now: datetime) -> int:
    """Seconds something closed at ``closed_at`` and kept ``retention_days`` still lives at ``now`` (at least 1)."""
    remaining = closed_at + timedelta(days=retention_days) - now
    return max(int(remaining.total_seconds()), 1)
