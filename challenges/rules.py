"""Pure challenge rules: one event and a member's progress in, new progress and effects out.

:func:`challenges.advance.advance` is the rule alone (count, sum, streak, distinct, sequence, all_of, first).
:func:`evaluate` wraps it with everything a challenge adds: the campaign's status, window, eligibility
and opt-in, lateness, the minimum interval, recurrence instances, the completion cap, multipliers, the
daily cap, and the rewards. :func:`replay` folds a member's events through :func:`evaluate`, which is
what backfill, the explain view and simulation run; the live processor calls :func:`screen` and
:func:`count_event` separately so it loads progress only for the events that pass the stateless checks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.advance import ADVANCE, EPSILON, utc
from challenges.models import (
    Campaign,
    CampaignState,
    Challenge,
    First,
    Outcome,
    Progress,
    Reason,
    Streak,
    rule_kind,
    rule_matches,
    rule_target,
)
from engine.effects import ChallengeCompleted, Effect, Notification, PointsAwarded, ProgressAdvanced
from engine.periods import (
    instance_bounds,
    instance_end,
    instance_of,
)
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from zoneinfo import ZoneInfo

    from engine.events import Event


#: How long past its end an instance of a recurring challenge without ``max_lateness`` still takes events.
DEFAULT_RETENTION = timedelta(days=31)


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
    return (
        _unmatched(challenge, event, member)
        or _untimely(challenge, event, tz=tz, received_at=received_at, live=live)
        or _not_taking_part(challenge, event, member=member, opted_in_at=opted_in_at)
    )


def _unmatched(challenge: Challenge, event: Event, member: Mapping[str, Any]) -> tuple[Reason, str] | None:
    """Why the event fits none of the rule's patterns, if it does not."""
    rule_patterns = challenge.patterns or rule_matches(challenge.rule)
    event_type = event.type
    for pattern in rule_patterns:
        if pattern.event_type == event_type and (
            pattern.filter is None
            or predicate_matches(pattern.filter, event_type=event_type, properties=event.properties, member=member)
        ):
            return None
    types = sorted({m.event_type for m in rule_patterns})
    if event.type not in types:
        return Reason.NO_MATCH, f"type {event.type!r} is not {' or '.join(repr(t) for t in types)}"
    return Reason.NO_MATCH, "the event does not pass the challenge's filter"


def _untimely(
    challenge: Challenge, event: Event, *, tz: ZoneInfo, received_at: datetime, live: bool
) -> tuple[Reason, str] | None:
    """Why the event counts at no time: the campaign's status or window, the go-live, or lateness."""
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
    return _late(challenge, occurred, tz=tz, received_at=received_at)


def _late(
    challenge: Challenge, occurred: datetime, *, tz: ZoneInfo, received_at: datetime
) -> tuple[Reason, str] | None:
    """Why an event arrived too late: past the challenge's lateness, or after its instance was let go."""
    if challenge.max_lateness is not None and received_at - occurred > challenge.max_lateness:
        return Reason.TOO_LATE, f"arrived {received_at - occurred} after it happened (limit {challenge.max_lateness})"
    if challenge.recurrence != "none" and received_at - occurred >= (kept := retention(challenge)):
        # only an event at least that late can belong to an instance that ended that long ago
        _start, end = instance_bounds(challenge.recurrence, occurred, tz)
        if end is not None and received_at >= end + kept:
            return Reason.TOO_LATE, f"its {challenge.recurrence} instance ended more than {kept} before it arrived"
    return None


def _not_taking_part(
    challenge: Challenge, event: Event, *, member: Mapping[str, Any], opted_in_at: datetime | None
) -> tuple[Reason, str] | None:
    """Why the member does not take part: the campaign's eligibility or a missing (or later) opt-in."""
    campaign = challenge.campaign
    if campaign.eligibility is not None and not predicate_matches(
        campaign.eligibility, event_type=event.type, properties={}, member=member
    ):
        return Reason.NOT_ELIGIBLE, "the member does not meet the campaign's eligibility rule"
    condition = challenge.requires.member
    if condition is not None and not predicate_matches(condition, event_type=event.type, properties={}, member=member):
        tiers = challenge.requires.tiers
        if tiers and member.get("tier") not in tiers:
            return Reason.LOCKED, f"open to members in tier {' or '.join(repr(t) for t in tiers)}"
        return Reason.LOCKED, "the member does not meet the challenge's requirements"
    if campaign.opt_in and (opted_in_at is None or event.occurred_at < opted_in_at):
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
    new, reason, detail = ADVANCE[type(rule)](progress, event, rule, tz, member, factor, challenge.daily_cap, explain)
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
    if value + EPSILON < target:
        return new, (advanced,), Reason.COUNTED, detail
    occurred = utc(event.occurred_at)
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
    unlocked: bool = True,
) -> Outcome:
    """Everything one event does to one member's progress on one challenge (``progress`` of the event's instance).

    ``unlocked`` says the challenges it requires were completed before this event (see :func:`locked_reason`).
    """
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
    if gate is None and not unlocked:
        gate = locked_reason(challenge)
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
    opens_at: int | None = 0,
) -> Replayed:
    """Fold one member's ``(event, received_at)`` pairs, in order, from no progress.

    ``prior`` says an earlier matching event exists outside ``events`` (for ``first``). ``opens_at`` is the
    index of the first event that may count when the challenge requires others (``None``: it never opens;
    :func:`challenges.prerequisites.replay_program` works it out).
    """
    progress: dict[str, Progress] = {}
    outcomes: list[tuple[str, Outcome]] = []
    completions = 0
    for index, (event, received_at) in enumerate(events):
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
            unlocked=opens_at is not None and index >= opens_at,
        )
        if outcome.completed:
            completions += 1
        if current is not None or outcome.progress != fresh_progress(None, challenge, instance):
            progress[instance] = outcome.progress
        outcomes.append((event.id, outcome))
    return Replayed(progress=progress, outcomes=outcomes)


def locked_reason(challenge: Challenge) -> tuple[Reason, str]:
    """Why an event does not count while the challenges ``challenge`` requires are not all completed."""
    names = " and ".join(repr(k) for k in challenge.requires.challenges)
    return Reason.LOCKED, f"opens once {names} {'is' if len(challenge.requires.challenges) == 1 else 'are'} completed"


def is_unlocked(challenge: Challenge, completions: Mapping[str, int], *, just_completed: Iterable[str] = ()) -> bool:
    """Whether every challenge ``challenge`` requires was completed before the event (live view).

    ``completions`` are the member's counts; ``just_completed`` the keys the current event itself completed,
    which do not open anything until the next event.
    """
    fresh = set(just_completed)
    return all(completions.get(key, 0) - (key in fresh) > 0 for key in challenge.requires.challenges)


def _done(progress: Progress) -> str:
    when = progress.completed_at.isoformat() if progress.completed_at else "earlier"
    suffix = f" (instance {progress.instance})" if progress.instance else ""
    return f"already completed at {when}{suffix}"
