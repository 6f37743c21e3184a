"""Tier rules: windows, qualification, re-evaluation, progress, simulation, birthdays. Pure; no I/O.

Windows are measured in local days of the brand's timezone; a window's end is the local midnight that
closes it, so a re-evaluation falls at the right instant across a daylight-saving change.
"""

from __future__ import annotations

import calendar
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from engine.effects import ChallengeCompleted, PointsAwarded
from engine.periods import local_day, local_midnight

if TYPE_CHECKING:
    from collections.abc import Mapping
    from zoneinfo import ZoneInfo

    from engine.effects import Effect
    from engine.events import Event
    from tiers.models import Metric, TierProgram, TierSpec, Window


def add_months(day: date, months: int) -> date:
    """``day`` moved ``months`` months on, clamped to the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _anniversary_start(day: date, since: date) -> date:
    """The last anniversary of ``since`` on or before ``day``."""
    years = day.year - since.year
    candidate = add_months(since, 12 * years)
    if candidate > day:
        candidate = add_months(since, 12 * (years - 1))
    return max(candidate, since)


def window_days(window: Window, day: date, *, member_since: date) -> tuple[date, date]:
    """The local days ``[first, end)`` of the window containing ``day`` (``end`` is its re-evaluation day)."""
    if window.kind == "calendar_year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if window.kind == "anniversary":
        start = _anniversary_start(day, member_since)
        return start, add_months(start, 12)
    return day - timedelta(days=window.days - 1), day + timedelta(days=1)


def window_start(window: Window, instant: datetime, tz: ZoneInfo, *, member_since: datetime) -> date:
    """The first local day counted at ``instant``."""
    return window_days(window, local_day(instant, tz), member_since=local_day(member_since, tz))[0]


def review_at(window: Window, instant: datetime, tz: ZoneInfo, *, member_since: datetime) -> datetime:
    """When a tier held at ``instant`` is next re-evaluated: the end of the window (local midnight).

    A rolling window has no natural end: a tier reached on a rolling window is reviewed ``days`` days
    after it was reached (and then every ``days`` days).
    """
    day = local_day(instant, tz)
    if window.kind == "rolling":
        return local_midnight(day + timedelta(days=window.days), tz)
    return local_midnight(window_days(window, day, member_since=local_day(member_since, tz))[1], tz)


def keep_until(months: int, now: datetime, tz: ZoneInfo) -> datetime | None:
    """Until when a tier reached at ``now`` is kept whatever the metric (local midnight ``months`` later)."""
    if not months:
        return None
    return local_midnight(add_months(local_day(now, tz), months), tz)


def sum_window(counters: Mapping[date, float], first: date, end: date) -> float:
    """The metric over the local days ``[first, end)``."""
    return sum(value for day, value in counters.items() if first <= day < end)


def increment(metric: Metric, event: Event, effects: list[Effect]) -> float:
    """How much one event (with what it caused) adds to the metric."""
    if metric.kind == "points_earned":
        return float(sum(e.points for e in effects if isinstance(e, PointsAwarded) and e.points > 0))
    if metric.kind == "challenges_completed":
        return float(sum(1 for e in effects if isinstance(e, ChallengeCompleted)))
    if metric.event_types and event.type not in metric.event_types:
        return 0.0
    if metric.kind == "event_count":
        return 1.0
    value: Any = event.properties.get(metric.property)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return 0.0
    return float(value)


def tier_for(program: TierProgram, value: float) -> TierSpec | None:
    """The highest tier whose threshold ``value`` reaches (``None`` below the lowest)."""
    found = None
    for tier in program.tiers:
        if value >= tier.threshold:
            found = tier
    return found


def is_upgrade(program: TierProgram, current: str | None, value: float) -> TierSpec | None:
    """The tier to move up to now, or ``None`` when ``value`` qualifies for nothing higher than ``current``."""
    target = tier_for(program, value)
    if target is None or program.rank(target.key) <= program.rank(current):
        return None
    return target


Change = Literal["renewed", "downgraded", "kept"]


@dataclass(frozen=True, slots=True)
class Review:
    """The outcome of a re-evaluation."""

    change: Change
    tier: str | None
    """The tier after the review (``None``: no tier)."""


def review(
    program: TierProgram, *, current: str | None, value: float, now: datetime, keep_until: datetime | None
) -> Review:
    """Re-evaluate at a window's end: renew, keep (minimum stay not over), or move down to what ``value`` earns.

    ``value`` is the metric over the window that ended (grace period included).
    """
    tier = program.get(current)
    if tier is None:
        target = tier_for(program, value)
        return Review("kept" if target is None else "renewed", target.key if target else None)
    if value >= tier.threshold:
        best = tier_for(program, value)
        return Review("renewed", best.key if best and program.rank(best.key) > program.rank(current) else current)
    if keep_until is not None and now < keep_until:
        return Review("kept", current)
    target = tier_for(program, value)
    return Review("downgraded", target.key if target else None)


@dataclass(frozen=True, slots=True)
class Progress:
    """What the portal shows: the next tier and what it takes, and what keeping the current one takes."""

    next_tier: str | None
    to_next: float
    keep_needed: float
    value: float
    ratio: float
    """0..1 towards the next tier (1 at the top)."""


def progress(program: TierProgram, *, current: str | None, value: float) -> Progress:
    """Progress from ``value`` towards the tier above ``current`` and towards keeping ``current``."""
    rank = program.rank(current)
    above = program.tiers[rank + 1] if rank + 1 < len(program.tiers) else None
    tier = program.get(current)
    keep = max((tier.threshold if tier else 0.0) - value, 0.0)
    if above is None:
        return Progress(next_tier=None, to_next=0.0, keep_needed=keep, value=value, ratio=1.0)
    floor = tier.threshold if tier else 0.0
    span = above.threshold - floor
    ratio = min(max((value - floor) / span, 0.0), 1.0) if span > 0 else 1.0
    return Progress(
        next_tier=above.key, to_next=max(above.threshold - value, 0.0), keep_needed=keep, value=value, ratio=ratio
    )


def earning_factor(rule_factor: float, tier_factor: float) -> float:
    """How a tier multiplier stacks with a rule's time-limited multipliers: they multiply (2x weekend x 1.5 Gold = 3x)."""
    return rule_factor * tier_factor


def simulate(
    program: TierProgram, proposed: TierProgram, *, values: Mapping[Any, float], current: Mapping[Any, str | None]
) -> dict[str, Any]:
    """How many members a threshold change would move: by tier before and after, and up/down counts.

    A member's tier before is their current tier; after, what their window value earns under ``proposed``
    (upgrades at once; a lower value would move them down at their next review).
    """
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    up = down = 0
    for member, value in values.items():
        was = current.get(member)
        target = tier_for(proposed, value)
        now_key = target.key if target else None
        before[was or ""] += 1
        after[now_key or ""] += 1
        old_rank, new_rank = proposed.rank(was), proposed.rank(now_key)
        if was and program.get(was) is not None and proposed.get(was) is None:
            old_rank = program.rank(was)
        if new_rank > old_rank:
            up += 1
        elif new_rank < old_rank:
            down += 1
    return {"members": len(values), "up": up, "down": down, "before": dict(before), "after": dict(after)}


def birthday_today(value: Any, today: date) -> bool:
    """Whether a ``birthday`` attribute (``YYYY-MM-DD`` or ``MM-DD``) falls on ``today`` (29 Feb on 28 Feb off leap years)."""
    if not isinstance(value, str):
        return False
    parts = value.strip().split("-")
    try:
        month, day = (int(parts[-2]), int(parts[-1])) if len(parts) >= 2 else (0, 0)
    except ValueError:
        return False
    if (month, day) == (2, 29) and not calendar.isleap(today.year):
        return (today.month, today.day) == (2, 28)
    return (today.month, today.day) == (month, day)
