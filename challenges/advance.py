"""Pure challenge rules alone: one event and a member's progress on one rule in, new progress out.

One function per rule type (count, sum, streak, distinct, sequence, all_of, first), looked up in
:data:`ADVANCE`; :func:`advance` applies a rule with no window, limits or rewards. What a challenge adds
around its rule (status, window, eligibility, caps, rewards, replay) is :mod:`challenges.rules`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.models import (
    AllOf,
    Count,
    Distinct,
    First,
    Match,
    Progress,
    Reason,
    Rule,
    Sequence,
    Streak,
    StreakCarry,
    Sum,
    rule_kind,
    rule_matches,
    rule_target,
)
from engine.effects import ChallengeCompleted, Effect, ProgressAdvanced
from engine.periods import (
    PeriodKind,
    period_id,
    periods_between,
    streak_period_of,
)
from engine.predicates import matches_event

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from engine.events import Event


#: Streak periods kept one by one; older ones are folded into ``Progress.carry``.
MAX_STREAK_PERIODS = 96
COMPACT_STREAK_PERIODS = 32
#: Days of daily-cap totals kept (a later event for an older day is capped as if nothing was counted).
DAY_TOTALS_KEPT = 31
MAX_VALUE_LENGTH = 200
EPSILON = 1e-9
#: Every counted event makes a new progress value this way (a call per field would cost more).
_replace = msgspec.structs.replace
_MISSING = object()


def event_matches(match: Match, event: Event, member: Mapping[str, Any]) -> bool:
    """Whether ``event`` has the pattern's type and passes its filter."""
    return matches_event(
        match.event_type, match.filter, event_type=event.type, properties=event.properties, member=member
    )


def percent(value: float, target: float) -> int:
    """Whole percent of ``target`` reached, 0–100."""
    if target <= 0:
        return 100
    return max(0, min(100, math.floor(value * 100 / target + EPSILON)))


def advance(
    progress: Progress,
    event: Event,
    rule: Rule,
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any] | None = None,
) -> tuple[Progress, list[Effect]]:
    """Apply one event to a member's progress on one rule (no window, limits or rewards: see :func:`evaluate`)."""
    view = member or {}
    if not any(event_matches(m, event, view) for m in rule_matches(rule)):
        return progress, []
    if progress.kind != rule_kind(rule):
        progress = Progress(challenge=progress.challenge, instance=progress.instance, kind=rule_kind(rule))
    if progress.completed and not isinstance(rule, Streak):
        return progress, []
    new, reason, _detail = ADVANCE[type(rule)](progress, event, rule, tz, view, 1.0, None, False)
    if progress.completed or not reason.counts:
        return new, []
    target = rule_target(rule)
    effects: list[Effect] = [
        ProgressAdvanced(challenge=new.challenge, progress=_rounded(new.value), target=target, instance=new.instance)
    ]
    if new.value + EPSILON >= target:
        new = msgspec.structs.replace(new, completed_at=utc(event.occurred_at))
        effects.append(
            ChallengeCompleted(challenge=new.challenge, instance=new.instance, completed_at=utc(event.occurred_at))
        )
    return new, effects


def _advance_count(
    progress: Progress,
    event: Event,
    rule: Count,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    return _add(progress, event, factor, tz, daily_cap, explain)


def _advance_sum(
    progress: Progress,
    event: Event,
    rule: Sum,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    name = rule.property
    value = property_value(event.properties, name)
    if value is _MISSING or value is None:
        return progress, Reason.MISSING_PROPERTY, f"no {name!r} property" if explain else ""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return progress, Reason.NOT_A_NUMBER, f"{name!r} is {value!r}, not a positive number" if explain else ""
    return _add(progress, event, float(value) * factor, tz, daily_cap, explain)


def _advance_streak(
    progress: Progress,
    event: Event,
    rule: Streak,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    return _streak(progress, event, rule, tz, explain)


def _advance_distinct(
    progress: Progress,
    event: Event,
    rule: Distinct,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    name = rule.property
    raw = property_value(event.properties, name)
    if raw is _MISSING or raw is None or isinstance(raw, dict | list):
        return progress, Reason.MISSING_PROPERTY, f"no plain {name!r} value" if explain else ""
    value = str(raw)[:MAX_VALUE_LENGTH]
    if value in progress.seen:
        return progress, Reason.ALREADY_SEEN, f"{name} {value!r} was already counted" if explain else ""
    seen = (*progress.seen, value)[: rule.target]
    new = _replace(
        progress,
        counted=progress.counted + 1,
        last_counted_at=utc(event.occurred_at),
        value=float(len(seen)),
        seen=seen,
    )
    return new, Reason.COUNTED, f"{name} {value!r} is new" if explain else ""


def _advance_sequence(
    progress: Progress,
    event: Event,
    rule: Sequence,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    return _sequence(progress, event, rule.steps, member, explain)


def _advance_all_of(
    progress: Progress,
    event: Event,
    rule: AllOf,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    for index, step in enumerate(rule.steps):
        if index not in progress.done and event_matches(step, event, member):
            done = tuple(sorted((*progress.done, index)))
            new = _replace(
                progress,
                counted=progress.counted + 1,
                last_counted_at=utc(event.occurred_at),
                value=float(len(done)),
                done=done,
            )
            return new, Reason.COUNTED, f"step {index + 1} ({step.event_type}) done" if explain else ""
    return progress, Reason.ALREADY_SEEN, "every step this event fits is already done"


def _advance_first(
    progress: Progress,
    event: Event,
    rule: First,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    factor: float,
    daily_cap: float | None,
    explain: bool,
) -> tuple[Progress, Reason, str]:
    if progress.prior:
        return progress, Reason.NOT_FIRST, "the member had an earlier matching event"
    counted = _replace(progress, counted=progress.counted + 1, last_counted_at=utc(event.occurred_at), value=1.0)
    return counted, Reason.COUNTED, "the first matching event"


#: The rule alone, per rule class: ``(progress, event, rule, tz, member, factor, daily_cap, explain)`` in,
#: ``(progress, reason, detail)`` out. One table look-up rather than a match over seven rule classes: this
#: runs once per event and live challenge, so the arguments are positional and the detail optional.
ADVANCE: dict[type, Callable[..., tuple[Progress, Reason, str]]] = {
    Count: _advance_count,
    Sum: _advance_sum,
    Streak: _advance_streak,
    Distinct: _advance_distinct,
    Sequence: _advance_sequence,
    AllOf: _advance_all_of,
    First: _advance_first,
}


def _add(
    progress: Progress, event: Event, amount: float, tz: ZoneInfo, daily_cap: float | None, explain: bool
) -> tuple[Progress, Reason, str]:
    totals = progress.day_totals
    cut = False
    if daily_cap is not None:
        day = period_id(PeriodKind.DAILY, event.occurred_at, tz)  # the local ISO date (cached per day)
        used = totals.get(day, 0.0)
        allowed = daily_cap - used
        if allowed <= EPSILON:
            return (
                progress,
                Reason.DAILY_CAP,
                f"the daily cap of {_rounded(daily_cap)} for {day} is reached" if explain else "",
            )
        if amount > allowed:
            amount = allowed
            cut = True
        totals = dict(totals)
        totals[day] = used + amount
        if len(totals) > DAY_TOTALS_KEPT:
            totals = dict(sorted(totals.items())[-DAY_TOTALS_KEPT:])
    new = _replace(
        progress,
        counted=progress.counted + 1,
        last_counted_at=utc(event.occurred_at),
        value=progress.value + amount,
        day_totals=totals,
    )
    if not explain:
        return new, Reason.COUNTED, ""
    return new, Reason.COUNTED, f"+{_rounded(amount)} (cut by the daily cap)" if cut else f"+{_rounded(amount)}"


def _sequence(
    progress: Progress, event: Event, steps: tuple[Match, ...], member: Mapping[str, Any], explain: bool
) -> tuple[Progress, Reason, str]:
    position = len(progress.done)
    if position < len(steps) and event_matches(steps[position], event, member):
        if progress.last_step_at is not None and event.occurred_at < progress.last_step_at:
            return progress, Reason.OUT_OF_ORDER, f"occurred before step {position} was done" if explain else ""
        done = (*progress.done, position)
        return (
            _replace(
                progress,
                counted=progress.counted + 1,
                last_counted_at=(when := utc(event.occurred_at)),
                value=float(len(done)),
                done=done,
                last_step_at=when,
            ),
            Reason.COUNTED,
            f"step {position + 1} ({steps[position].event_type}) done" if explain else "",
        )
    for index, step in enumerate(steps):
        if event_matches(step, event, member):
            if index < position:
                return progress, Reason.ALREADY_SEEN, f"step {index + 1} is already done" if explain else ""
            return (
                progress,
                Reason.OUT_OF_ORDER,
                f"step {index + 1} must wait for step {position + 1}" if explain else "",
            )
    return progress, Reason.NO_MATCH, "the event fits no step"


def fold_streak(carry: StreakCarry, periods: Iterable[date], rule: Streak) -> StreakCarry:
    """Fold active periods (sorted, after ``carry.last``) into current/longest streak and freezes left."""
    current, longest, freezes, last = carry.current, carry.longest, carry.freezes, carry.last
    for period in periods:
        if last is None:
            current = 1
        else:
            missed = periods_between(last, period, rule.period) - 1
            beyond_grace = missed - rule.grace
            if beyond_grace <= 0:
                current += 1
            elif beyond_grace <= freezes:
                freezes -= beyond_grace
                current += 1
            else:
                current = 1
        if rule.earn_freeze_every and current % rule.earn_freeze_every == 0:
            freezes = min(freezes + 1, rule.freezes)
        longest = max(longest, current)
        last = period
    return StreakCarry(current=current, longest=longest, freezes=freezes, last=last)


def _streak(
    progress: Progress, event: Event, rule: Streak, tz: ZoneInfo, explain: bool
) -> tuple[Progress, Reason, str]:
    period = streak_period_of(event.occurred_at, rule.period, tz)
    carry = progress.carry or StreakCarry(freezes=rule.freezes)
    kept = progress.periods
    if period in kept or period == carry.last:
        return progress, Reason.SAME_PERIOD, _period_note(rule, period, "already counts", explain)
    if carry.last is not None and period < carry.last:
        return progress, Reason.TOO_OLD, _period_note(rule, period, "is older than the streak history kept", explain)
    # Periods are kept sorted; an event is usually in the latest period so far.
    latest = bool(kept) and kept[-1] < period
    periods = (*kept, period) if latest or not kept else tuple(sorted((*kept, period)))
    if len(periods) > MAX_STREAK_PERIODS:
        carry = fold_streak(carry, periods[:COMPACT_STREAK_PERIODS], rule)
        periods = periods[COMPACT_STREAK_PERIODS:]
    if latest and progress.streak_last == kept[-1]:
        # The stored figures are the fold up to the previous latest period: one more step gives the same
        # result as folding every kept period again (folding is left to right), in constant time.
        folded = StreakCarry(
            current=int(progress.value), longest=progress.longest, freezes=progress.freezes, last=progress.streak_last
        )
        stats = fold_streak(folded, (period,), rule)
    else:
        stats = fold_streak(carry, periods, rule)
    new = _replace(
        progress,
        counted=progress.counted + 1,
        last_counted_at=utc(event.occurred_at),
        periods=periods,
        carry=carry if carry.last is not None else None,
        value=float(stats.current),
        longest=stats.longest,
        freezes=stats.freezes,
        streak_last=stats.last,
    )
    if not explain:
        return new, Reason.COUNTED, ""
    label = "day" if rule.period == "day" else "week"
    return new, Reason.COUNTED, f"{label} {period.isoformat()} is active; streak {stats.current}"


def _period_note(rule: Streak, period: date, what: str, explain: bool) -> str:
    return f"the {'day' if rule.period == 'day' else 'week'} of {period.isoformat()} {what}" if explain else ""


def streak_now(progress: Progress, rule: Streak, *, today: date) -> int:
    """The current streak as the member sees it on ``today``: 0 once too many periods were missed.

    The period containing ``today`` is not missed yet: it may still get its event.
    """
    last = progress.streak_last
    if last is None:
        return 0
    period = today if rule.period == "day" else today - timedelta(days=today.weekday())
    missed = periods_between(last, period, rule.period) - 1
    if missed - rule.grace > progress.freezes:
        return 0
    return int(progress.value)


def property_value(properties: Mapping[str, Any], name: str) -> Any:
    """The (possibly dotted) property ``name`` of an event, or a sentinel when absent."""
    if "." not in name and isinstance(properties, dict):
        return properties.get(name, _MISSING)
    current: Any = properties
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def utc(instant: datetime) -> datetime:
    """``instant`` in UTC (itself when it already is)."""
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def _rounded(value: float) -> float:
    return value if value.is_integer() else round(value, 6)
