"""Points expiry policy and its date arithmetic in the brand's timezone. Pure; no I/O.

A brand's program chooses one policy (``brand.settings["points"]``):

- ``none``: points never expire;
- ``rolling``: each lot expires N months after it was earned (same local wall-clock time, the day
  clamped to the month's end);
- ``calendar``: each lot expires at the end of the Nth month (or year) after the one it was earned in,
  i.e. at local midnight starting the next one, so a DST change moves the UTC instant, not the local one;
- ``inactivity``: lots carry no date; all of a member's points expire N months after their last
  qualifying activity (an earn or a spend).

A lot's date is fixed when it is earned: changing the policy later does not move existing lots.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from engine.errors import ValidationError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

Months = Annotated[int, msgspec.Meta(ge=1, le=600)]
NoticeDays = Annotated[int, msgspec.Meta(ge=1, le=366)]
SETTINGS_KEY = "points"


class NoExpiry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="none", tag_field="kind"):
    """Points never expire."""


class Rolling(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="rolling", tag_field="kind"):
    """Each lot expires ``months`` after it was earned."""

    months: Months


class Calendar(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="calendar", tag_field="kind"):
    """Each lot expires at the end of the ``count``-th month or year after the one it was earned in."""

    count: Annotated[int, msgspec.Meta(ge=0, le=50)] = 1
    unit: Literal["month", "year"] = "year"


class Inactivity(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag="inactivity", tag_field="kind"
):
    """All points expire ``months`` after the member's last earn or spend."""

    months: Months


ExpiryRule = NoExpiry | Rolling | Calendar | Inactivity


class PointsPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The program's points policy: how points expire and when members are told beforehand."""

    expiry: ExpiryRule = NoExpiry()
    notice_days: list[NoticeDays] = msgspec.field(default_factory=lambda: [30, 7])
    """``points.expiring`` goes out this many days before a lot expires (once per lot and threshold)."""


def policy_of(settings: dict[str, Any]) -> PointsPolicy:
    """The policy stored in a brand's settings (no expiry when none is set)."""
    raw = settings.get(SETTINGS_KEY)
    if raw is None:
        return PointsPolicy()
    return msgspec.convert(raw, PointsPolicy)


def parse_policy(data: Any) -> PointsPolicy:
    """Validate a policy given as plain data.

    Raises:
        ValidationError: the policy does not fit the schema (the message names the field).
    """
    try:
        return msgspec.convert(data, PointsPolicy)
    except msgspec.ValidationError as exc:
        raise ValidationError(str(exc), field="$.points") from exc


def add_months(instant: datetime, months: int, tz: ZoneInfo) -> datetime:
    """``instant`` moved by ``months`` calendar months at the same local time (day clamped to the month's end)."""
    local = instant.astimezone(tz)
    index = local.year * 12 + local.month - 1 + months
    year, month = divmod(index, 12)
    day = min(local.day, _days_in_month(year, month + 1))
    moved = datetime(year, month + 1, day, local.hour, local.minute, local.second, local.microsecond, tzinfo=tz)
    return moved.astimezone(UTC)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def expires_at(rule: ExpiryRule, earned_at: datetime, tz: ZoneInfo) -> datetime | None:
    """When a lot earned at ``earned_at`` expires under ``rule`` (``None`` for never or inactivity)."""
    match rule:
        case Rolling(months=months):
            return add_months(earned_at, months, tz)
        case Calendar(count=count, unit="month"):
            local = earned_at.astimezone(tz)
            index = local.year * 12 + local.month - 1 + count + 1
            year, month = divmod(index, 12)
            return _local_midnight(date(year, month + 1, 1), tz)
        case Calendar(count=count, unit="year"):
            return _local_midnight(date(earned_at.astimezone(tz).year + count + 1, 1, 1), tz)
    return None


def inactivity_deadline(rule: ExpiryRule, last_activity: datetime | None, tz: ZoneInfo) -> datetime | None:
    """When an inactive member's points expire, or ``None`` when the rule is not ``inactivity``."""
    if not isinstance(rule, Inactivity) or last_activity is None:
        return None
    return add_months(last_activity, rule.months, tz)


def inactivity_cutoff(rule: Inactivity, now: datetime, tz: ZoneInfo) -> datetime:
    """Members whose last activity is at or before this instant have expired points at ``now``.

    An upper bound computed backwards; callers confirm each member with :func:`inactivity_deadline`.
    """
    return add_months(now, -rule.months, tz) + timedelta(days=1)


def due_notices(expires: datetime, now: datetime, notice_days: list[int]) -> list[int]:
    """The thresholds (days before expiry) already reached at ``now`` for a lot not yet expired."""
    if expires <= now:
        return []
    return sorted(d for d in notice_days if expires - timedelta(days=d) <= now)


def rule_kind(rule: ExpiryRule) -> str:
    """The rule's name as stored (``none``, ``rolling``, ``calendar``, ``inactivity``)."""
    return str(type(rule).__struct_config__.tag)
