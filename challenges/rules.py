"""Pure challenge rules: one event and a member's progress in, new progress and effects out.

:func:`advance` is the rule alone (count, sum, streak, distinct, sequence, all_of, first).
:func:`evaluate` wraps it with everything a challenge adds: the campaign's status, window, eligibility
and opt-in, lateness, the minimum interval, recurrence instances, the completion cap, multipliers, the
daily cap, and the rewards. :func:`replay` folds a member's events through :func:`evaluate`, which is
what backfill, the explain view and simulation run; the live processor calls :func:`screen` and
:func:`count_event` separately so it loads progress only for the events that pass the stateless checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.models import (
    AllOf,
    Campaign,
    CampaignState,
    Challenge,
    Count,
    Distinct,
    First,
    Match,
    Outcome,
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
from engine.effects import ChallengeCompleted, Effect, Notification, PointsAwarded, ProgressAdvanced
from engine.periods import (
    PeriodKind,
    instance_bounds,
    instance_end,
    instance_of,
    period_id,
    periods_between,
    streak_period_of,
)
from engine.predicates import matches as predicate_matches
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
#: How long past its end an instance of a recurring challenge without ``max_lateness`` still takes events.
DEFAULT_RETENTION = timedelta(days=31)
_EPSILON = 1e-9
#: Every counted event makes a new progress value this way (a call per field would cost more).
_replace = msgspec.structs.replace
_MISSING = object()


def campaign_state(campaign: Campaign, now: datetime) -> CampaignState:
    """The campaign's state at ``now``: draft, scheduled, active, paused or ended."""
    if campaign.status == "draft":
        return CampaignState.DRAFT
    if campaign.ends_at is not None and now >= campaign.ends_at:
        return CampaignState.ENDED
    if campaign.status == "paused":
        return CampaignState.PAUSED
    if campaign.starts_at is not None and now < campaign.starts_at:
        return CampaignState.SCHEDULED
    return CampaignState.ACTIVE


def event_matches(match: Match, event: Event, member: Mapping[str, Any]) -> bool:
    """Whether ``event`` has the pattern's type and passes its filter."""
    return matches_event(
        match.event_type, match.filter, event_type=event.type, properties=event.properties, member=member
    )


def percent(value: float, target: float) -> int:
    """Whole percent of ``target`` reached, 0–100."""
    if target <= 0:
        return 100
    return max(0, min(100, math.floor(value * 100 / target + _EPSILON)))


def fresh_progress(progress: Progress | None, challenge: Challenge, instance: str) -> Progress:
    """The member's progress for ``instance``, or a new one (also when the rule's type changed)."""
    kind = challenge.kind or rule_kind(challenge.rule)
    if progress is not None and progress.kind == kind:
        return progress
    return Progress(challenge=challenge.key, instance=instance, kind=kind)


def screen(
    challenge: Challenge,
    event: Event,
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    received_at: datetime,
    opted_in_at: datetime | None = None,
    live: bool = True,
) -> tuple[Reason, str] | None:
    """The checks that need no progress: match, status, window, lateness, eligibility, opt-in.

    ``live`` is the pipeline's view: the campaign's current status (draft, paused) applies, and the event is
    being received now. A replay (``live=False``) ignores the status, which it cannot know for the past, and
    instead skips events received before the challenge went live unless its backfill covers them.

    Returns:
        ``None`` when the event may count, else the reason it does not and a human explanation.
    """
    rule_patterns = challenge.patterns or rule_matches(challenge.rule)
    event_type = event.type
    for pattern in rule_patterns:
        if pattern.event_type == event_type and (
            pattern.filter is None
            or predicate_matches(pattern.filter, event_type=event_type, properties=event.properties, member=member)
        ):
            break
    else:
        types = sorted({m.event_type for m in rule_patterns})
        if event.type not in types:
            return Reason.NO_MATCH, f"type {event.type!r} is not {' or '.join(repr(t) for t in types)}"
        return Reason.NO_MATCH, "the event does not pass the challenge's filter"
    campaign = challenge.campaign
    if live and campaign.status == "draft":
        return Reason.DRAFT, f"campaign {campaign.key!r} is a draft"
    if live and campaign.status == "paused":
        return Reason.PAUSED, f"campaign {campaign.key!r} is paused"
    occurred = event.occurred_at
    if campaign.starts_at is not None and occurred < campaign.starts_at:
        return Reason.BEFORE_WINDOW, f"occurred before the campaign starts ({campaign.starts_at.isoformat()})"
    if campaign.ends_at is not None and occurred >= campaign.ends_at:
        return Reason.AFTER_WINDOW, f"occurred at or after the campaign's end ({campaign.ends_at.isoformat()})"
    if (
        not live
        and challenge.live_since is not None
        and received_at < challenge.live_since
        and not (challenge.backfill_from is not None and occurred >= challenge.backfill_from)
    ):
        return Reason.NOT_LIVE_YET, "received before the challenge went live (and not covered by its backfill)"
    if challenge.max_lateness is not None and received_at - occurred > challenge.max_lateness:
        return Reason.TOO_LATE, f"arrived {received_at - occurred} after it happened (limit {challenge.max_lateness})"
    if challenge.recurrence != "none" and received_at - occurred >= (kept := retention(challenge)):
        # only an event at least that late can belong to an instance that ended that long ago
        _start, end = instance_bounds(challenge.recurrence, occurred, tz)
        if end is not None and received_at >= end + kept:
            return Reason.TOO_LATE, f"its {challenge.recurrence} instance ended more than {kept} before it arrived"
    if campaign.eligibility is not None and not predicate_matches(
        campaign.eligibility, event_type=event.type, properties={}, member=member
    ):
        return Reason.NOT_ELIGIBLE, "the member does not meet the campaign's eligibility rule"
    if campaign.opt_in and (opted_in_at is None or occurred < opted_in_at):
        return Reason.NOT_OPTED_IN, (
            "the member has not opted in" if opted_in_at is None else "occurred before the member opted in"
        )
    return None


def count_event(
    challenge: Challenge,
    progress: Progress,
    event: Event,
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    completions: int = 0,
    explain: bool = True,
    instance: str | None = None,
) -> Outcome:
    """Apply a screened event to the member's progress on its instance, with the challenge's limits and rewards.

    ``completions`` is how many other instances the member already completed (for the cap). With
    ``explain=False`` the outcome's human ``detail`` is left empty (progress, effects and reason are the
    same): the pipeline shows it to no one, and it would be built for every event and live challenge.
    ``instance`` names the instance in the effects when ``progress`` carries no identity (the pipeline's
    progress does not); by default it is ``progress.instance``.
    """
    new, effects, reason, detail = apply_event(
        challenge,
        progress,
        event,
        tz,
        member,
        completions,
        explain,
        progress.instance if instance is None else instance,
    )
    return Outcome(progress=new, effects=list(effects), reason=reason, detail=detail)


_NO_EFFECTS: tuple[Effect, ...] = ()


def apply_event(
    challenge: Challenge,
    progress: Progress,
    event: Event,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    completions: int,
    explain: bool,
    instance: str,
) -> tuple[Progress, tuple[Effect, ...], Reason, str]:
    """:func:`count_event` as a plain tuple ``(progress, effects, reason, detail)``, arguments positional.

    The pipeline calls it once per event and live challenge, where building an :class:`Outcome` and
    passing keywords are a measurable share of the work. ``progress`` is returned unchanged (the same
    object) when the event changes nothing.
    """
    rule = challenge.rule
    done = progress.completed_at is not None
    if done:
        if not isinstance(rule, Streak):
            return progress, _NO_EFFECTS, Reason.ALREADY_COMPLETED, _done(progress) if explain else ""
    else:
        cap = 1 if challenge.recurrence == "none" else challenge.max_completions
        if cap is not None and completions >= cap:
            return (
                progress,
                _NO_EFFECTS,
                Reason.CAP_REACHED,
                f"completed {completions} of {cap} times" if explain else "",
            )
        if (
            challenge.min_interval is not None
            and progress.last_counted_at is not None
            and abs(event.occurred_at - progress.last_counted_at) < challenge.min_interval
        ):
            detail = f"less than {challenge.min_interval} after the previous counted event" if explain else ""
            return progress, _NO_EFFECTS, Reason.TOO_SOON, detail
    factor = multiplier_for(challenge, event.occurred_at) if challenge.multipliers else 1.0
    new, reason, detail = _ADVANCE[type(rule)](progress, event, rule, tz, member, factor, challenge.daily_cap, explain)
    if done:
        # A completed streak keeps its current/longest figures up to date, but earns nothing more.
        return new, _NO_EFFECTS, Reason.ALREADY_COMPLETED, _done(progress) if explain else ""
    if reason is not Reason.COUNTED:
        return new, _NO_EFFECTS, reason, detail
    target = challenge.goal or rule_target(rule)
    value = new.value
    advanced = ProgressAdvanced(
        challenge=challenge.key,
        progress=value if value.is_integer() else round(value, 6),
        target=target,
        instance=instance,
    )
    if value + _EPSILON < target:
        return new, (advanced,), Reason.COUNTED, detail
    occurred = _utc(event.occurred_at)
    new = msgspec.structs.replace(new, completed_at=occurred)
    return (
        new,
        (advanced, *reward_effects(challenge, instance=instance, completed_at=occurred)),
        Reason.COMPLETED,
        detail,
    )


def retention(challenge: Challenge) -> timedelta:
    """How long after an instance of a recurring challenge ends an event for it may still arrive and count."""
    return challenge.max_lateness if challenge.max_lateness is not None else DEFAULT_RETENTION


def prune_instances(
    instances: Mapping[str, Progress], challenge: Challenge, *, now: datetime, tz: ZoneInfo
) -> dict[str, Progress]:
    """Drop the instances of a recurring challenge no event can reach any more (see :func:`retention`)."""
    if challenge.recurrence == "none":
        return dict(instances)
    kept = retention(challenge)
    result: dict[str, Progress] = {}
    for instance, progress in instances.items():
        end = instance_end(challenge.recurrence, instance, tz)
        if end is None or now < end + kept:
            result[instance] = progress
    return result


def reward_effects(challenge: Challenge, *, instance: str, completed_at: datetime) -> list[Effect]:
    """What completing an instance gives: the completion, bonus points and a ``challenge.completed`` notification."""
    reward = challenge.reward
    effects: list[Effect] = [
        ChallengeCompleted(challenge=challenge.key, instance=instance, completed_at=completed_at, badge=reward.badge)
    ]
    if reward.points:
        effects.append(PointsAwarded(points=reward.points, source="challenge", key=challenge.key))
    effects.append(
        Notification(
            topic="challenge.completed",
            data={
                "challenge": challenge.key,
                "campaign": challenge.campaign.key,
                "instance": instance,
                "completed_at": completed_at.isoformat(),
                "points": reward.points,
                "badge": reward.badge,
            },
        )
    )
    return effects


def multiplier_for(challenge: Challenge, instant: datetime) -> float:
    """The product of the challenge's multipliers active at ``instant``."""
    factor = 1.0
    for multiplier in challenge.multipliers:
        if multiplier.starts_at <= instant < multiplier.ends_at:
            factor *= multiplier.factor
    return factor


def evaluate(
    challenge: Challenge,
    progress: Progress | None,
    event: Event,
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    received_at: datetime,
    opted_in_at: datetime | None = None,
    completions: int = 0,
    live: bool = True,
) -> Outcome:
    """Everything one event does to one member's progress on one challenge (``progress`` of the event's instance)."""
    instance = instance_of(challenge.recurrence, event.occurred_at, tz)
    current = fresh_progress(progress, challenge, instance)
    gate = screen(
        challenge,
        event,
        tz=tz,
        member=member,
        received_at=received_at,
        opted_in_at=opted_in_at,
        live=live,
    )
    if gate is None:
        return count_event(challenge, current, event, tz=tz, member=member, completions=completions)
    reason, detail = gate
    if reason is Reason.BEFORE_WINDOW and isinstance(challenge.rule, First) and not current.prior:
        current = msgspec.structs.replace(current, prior=True)
    return Outcome(progress=current, effects=[], reason=reason, detail=detail)


class Replayed(msgspec.Struct, frozen=True, kw_only=True):
    """A member's events folded through one challenge: progress per instance and each event's outcome."""

    progress: dict[str, Progress]
    outcomes: list[tuple[str, Outcome]]
    """(event id, outcome) in the order the events were folded."""


def replay(
    challenge: Challenge,
    events: Iterable[tuple[Event, datetime]],
    *,
    tz: ZoneInfo,
    member: Mapping[str, Any],
    opted_in_at: datetime | None = None,
    live: bool = False,
    prior: bool = False,
) -> Replayed:
    """Fold one member's ``(event, received_at)`` pairs, in order, from no progress.

    ``prior`` says an earlier matching event exists outside ``events`` (for ``first``).
    """
    progress: dict[str, Progress] = {}
    outcomes: list[tuple[str, Outcome]] = []
    completions = 0
    for event, received_at in events:
        instance = instance_of(challenge.recurrence, event.occurred_at, tz)
        current = progress.get(instance)
        if current is None and prior:
            current = msgspec.structs.replace(fresh_progress(None, challenge, instance), prior=True)
        outcome = evaluate(
            challenge,
            current,
            event,
            tz=tz,
            member=member,
            received_at=received_at,
            opted_in_at=opted_in_at,
            completions=completions,
            live=live,
        )
        if outcome.completed:
            completions += 1
        if current is not None or outcome.progress != fresh_progress(None, challenge, instance):
            progress[instance] = outcome.progress
        outcomes.append((event.id, outcome))
    return Replayed(progress=progress, outcomes=outcomes)


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
    new, reason, _detail = _ADVANCE[type(rule)](progress, event, rule, tz, view, 1.0, None, False)
    if progress.completed or not reason.counts:
        return new, []
    target = rule_target(rule)
    effects: list[Effect] = [
        ProgressAdvanced(challenge=new.challenge, progress=_rounded(new.value), target=target, instance=new.instance)
    ]
    if new.value + _EPSILON >= target:
        new = msgspec.structs.replace(new, completed_at=_utc(event.occurred_at))
        effects.append(
            ChallengeCompleted(challenge=new.challenge, instance=new.instance, completed_at=_utc(event.occurred_at))
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
        last_counted_at=_utc(event.occurred_at),
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
                last_counted_at=_utc(event.occurred_at),
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
    counted = _replace(progress, counted=progress.counted + 1, last_counted_at=_utc(event.occurred_at), value=1.0)
    return counted, Reason.COUNTED, "the first matching event"


#: The rule alone, per rule class: ``(progress, event, rule, tz, member, factor, daily_cap, explain)`` in,
#: ``(progress, reason, detail)`` out. One table look-up rather than a match over seven rule classes: this
#: runs once per event and live challenge, so the arguments are positional and the detail optional.
_ADVANCE: dict[type, Callable[..., tuple[Progress, Reason, str]]] = {
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
        if allowed <= _EPSILON:
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
        last_counted_at=_utc(event.occurred_at),
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
                last_counted_at=(when := _utc(event.occurred_at)),
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
        last_counted_at=_utc(event.occurred_at),
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


def _done(progress: Progress) -> str:
    when = progress.completed_at.isoformat() if progress.completed_at else "earlier"
    suffix = f" (instance {progress.instance})" if progress.instance else ""
    return f"already completed at {when}{suffix}"


def _utc(instant: datetime) -> datetime:
    return instant if instant.tzinfo is UTC else instant.astimezone(UTC)


def _rounded(value: float) -> float:
    return value if value.is_integer() else round(value, 6)
