"""What a member sees: their challenges with progress, and an explanation of why each event counted or not.

The list reads stored progress. The explain view replays the member's stored events through the
current definition with :func:`challenges.rules.replay` (progress is a fold over events), so every event
gets the reason it did or did not count; the header still shows the stored progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from challenges.advance import percent, streak_now
from challenges.completions import member_completions
from challenges.definitions import load_compiled, stored_campaigns
from challenges.enrolments import enrolments
from challenges.models import (
    AllOf,
    CampaignState,
    Challenge,
    Distinct,
    Progress,
    Sequence,
    Streak,
    rule_kind,
)
from challenges.prerequisites import lock_of
from challenges.rules import campaign_state
from challenges.states import member_state
from engine.errors import NotFound
from engine.ids import MemberId
from engine.periods import instance_bounds, instance_of, local_day
from engine.predicates import matches as predicate_matches
from engine.predicates import segments_used, with_segments

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import SegmentMembership
    from engine.members import Member
    from engine.tenants import Brand

MAX_REPLAYED_EVENTS = 5000


class RewardView(msgspec.Struct, frozen=True, kw_only=True):
    """What completing gives."""

    points: int
    badge: str


class StreakView(msgspec.Struct, frozen=True, kw_only=True):
    """A streak as the member sees it today."""

    period: str
    current: int
    longest: int
    freezes: int


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a sequence or all-of challenge."""

    event_type: str
    done: bool


class RequiredView(msgspec.Struct, frozen=True, kw_only=True):
    """A challenge that must be completed first, as the member sees it."""

    key: str
    title: str


class LockView(msgspec.Struct, frozen=True, kw_only=True):
    """What opens a locked challenge: challenges to complete first, tiers to reach, another condition."""

    challenges: list[RequiredView]
    tiers: list[str]
    condition: bool


class MemberChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """One challenge with the member's progress on its current instance."""

    key: str
    title: str
    description: str
    campaign: str
    campaign_title: str
    type: str
    state: CampaignState
    """The campaign's state: scheduled, active, paused or ended."""
    status: str
    """The member's: ``not_started``, ``in_progress``, ``completed`` (this instance) or ``capped``."""
    instance: str
    """The current instance (``""`` for a one-off challenge, else e.g. ``2026-W47``)."""
    starts_at: datetime | None
    ends_at: datetime | None
    """End of the current instance (exclusive), bounded by the campaign's window."""
    progress: float
    target: float
    percent: int
    completed_at: datetime | None
    completions: int
    max_completions: int | None
    requires_opt_in: bool
    opted_in: bool
    reward: RewardView
    streak: StreakView | None = None
    steps: list[StepView] | None = None
    values: list[str] | None = None
    required: int | None = None
    """``all_of`` with ``required``: how many of the steps complete it (N of M)."""
    locked: LockView | None = None
    """What still keeps the challenge closed to the member (``status`` is then ``locked``)."""
    lang: str | None = None
    """The language ``title`` is in when the brand gave it per locale (the member's, else a fallback)."""


async def visible_challenges(session: AsyncSession, brand: Brand) -> list[Challenge]:
    """The brand's challenges members can see (every campaign but drafts)."""
    challenges = await load_compiled(session, brand_id=brand.id, tz=brand.tz)
    return [c for c in challenges if c.campaign.status != "draft"]


def _window(challenge: Challenge, now: datetime, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """When the current instance starts and ends, inside the campaign's dates."""
    start, end = instance_bounds(challenge.recurrence, now, tz)
    campaign = challenge.campaign
    if campaign.starts_at is not None:
        start = campaign.starts_at if start is None else max(start, campaign.starts_at)
    if campaign.ends_at is not None:
        end = campaign.ends_at if end is None else min(end, campaign.ends_at)
    return start, end


def _status(progress: Progress, *, locked: bool, capped: bool) -> str:
    """``completed``, ``locked``, ``capped``, ``in_progress`` or ``not_started`` (in that precedence)."""
    if progress.completed:
        return "completed"
    if locked:
        return "locked"
    if capped:
        return "capped"
    return "in_progress" if progress.counted else "not_started"


def _view(
    challenge: Challenge,
    *,
    stored: dict[str, Progress],
    completions: int,
    opted_in: bool,
    brand: Brand,
    now: datetime,
    locked: LockView | None = None,
    locale: str | None = None,
) -> MemberChallenge:
    tz = brand.tz
    instance = instance_of(challenge.recurrence, now, tz)
    start, end = _window(challenge, now, tz)
    campaign = challenge.campaign
    kind = rule_kind(challenge.rule)
    progress = stored.get(instance)
    if progress is None or progress.kind != kind:
        progress = Progress(challenge=challenge.key, instance=instance, kind=kind)
    value = progress.value
    streak = steps = values = None
    rule = challenge.rule
    if isinstance(rule, Streak):
        current = streak_now(progress, rule, today=local_day(now, tz))
        value = float(current)
        streak = StreakView(period=rule.period, current=current, longest=progress.longest, freezes=progress.freezes)
    elif isinstance(rule, Sequence | AllOf):
        steps = [StepView(event_type=m.event_type, done=i in progress.done) for i, m in enumerate(rule.steps)]
    elif isinstance(rule, Distinct):
        values = list(progress.seen)
    if progress.completed:
        value = max(value, challenge.target) if not isinstance(rule, Streak) else value
    cap = challenge.cap
    status = _status(progress, locked=locked is not None, capped=cap is not None and completions >= cap)
    target = challenge.target
    title, lang = challenge.texts.get("title", locale, challenge.title)
    return MemberChallenge(
        key=challenge.key,
        title=title,
        description=challenge.texts.text("description", locale, challenge.description),
        campaign=campaign.key,
        campaign_title=campaign.texts.text("title", locale, campaign.title),
        type=kind,
        state=campaign_state(campaign, now),
        status=status,
        instance=instance,
        starts_at=start,
        ends_at=end,
        progress=round(value, 2),
        target=target,
        percent=100 if progress.completed else percent(value, target),
        completed_at=progress.completed_at,
        completions=completions,
        max_completions=cap,
        requires_opt_in=campaign.opt_in,
        opted_in=opted_in,
        reward=RewardView(points=challenge.reward.points, badge=challenge.reward.badge),
        streak=streak,
        steps=steps,
        values=values,
        required=rule.required if isinstance(rule, AllOf) and rule.required else None,
        locked=locked,
        lang=lang,
    )


def _lock_view(
    challenge: Challenge,
    program: dict[str, Challenge],
    completions: dict[str, int],
    member: Member,
    locale: str | None,
) -> LockView | None:
    lock = lock_of(challenge, completions, member.predicate_view)
    if lock is None:
        return None
    required = [
        RequiredView(key=k, title=program[k].texts.text("title", locale, program[k].title) if k in program else k)
        for k in lock.challenges
    ]
    return LockView(challenges=required, tiers=lock.tiers, condition=lock.condition)


async def member_challenges(
    session: AsyncSession,
    *,
    brand: Brand,
    member: Member,
    now: datetime,
    include_ended: bool = False,
    locale: str | None = None,
    segments: SegmentMembership | None = None,
) -> list[MemberChallenge]:
    """The challenges the member is eligible for, with progress; ended ones only if the member took part.

    Titles and descriptions given per locale are in ``locale`` (by default the member's). A campaign whose
    eligibility names a segment is judged by the member's segments now (``segments``; without it such a
    campaign shows to nobody).
    """
    locale = locale or member.locale
    visible = await visible_challenges(session, brand)
    program = {c.key: c for c in visible}
    view_of_member: dict[str, Any] = dict(member.predicate_view)
    if segments is not None and any(
        c.campaign.eligibility is not None and segments_used(c.campaign.eligibility) for c in visible
    ):
        held = await segments(session, brand=brand, member_ids=[MemberId(member.id)], now=now)
        view_of_member = with_segments(view_of_member, held.get(MemberId(member.id), frozenset()))
    challenges = [c for c in visible if predicate_matches(c.campaign.eligibility, properties={}, member=view_of_member)]
    state = await member_state(session, brand_id=brand.id, member_id=member.id)
    opted = await enrolments(
        session,
        brand_id=brand.id,
        campaign_ids={c.campaign.id for c in challenges if c.campaign.opt_in},
        member_ids={member.id},
    )
    views: list[MemberChallenge] = []
    for challenge in challenges:
        mine = state.progress.get(challenge.key, {})
        view = _view(
            challenge,
            stored=mine,
            completions=state.completions.get(challenge.key, 0),
            opted_in=(challenge.campaign.id, member.id) in opted,
            brand=brand,
            now=now,
            locked=_lock_view(challenge, program, state.completions, member, locale),
            locale=locale,
        )
        if view.state is CampaignState.ENDED and not include_ended and not any(p.counted for p in mine.values()):
            continue
        views.append(view)
    return views


async def member_challenge(
    session: AsyncSession, *, brand: Brand, member: Member, key: str, now: datetime, locale: str | None = None
) -> MemberChallenge:
    """One challenge with the member's progress (also when the member is not eligible: it says so via ``status``).

    Raises:
        NotFound: no such challenge (archived and draft ones included).
    """
    program = {c.key: c for c in await visible_challenges(session, brand)}
    challenge = program.get(key)
    if challenge is None:
        raise NotFound(f"no challenge {key!r}", field="key")
    state = await member_state(session, brand_id=brand.id, member_id=member.id)
    opted = await enrolments(session, brand_id=brand.id, campaign_ids={challenge.campaign.id}, member_ids={member.id})
    return _view(
        challenge,
        stored=state.progress.get(challenge.key, {}),
        completions=state.completions.get(challenge.key, 0),
        opted_in=bool(opted),
        brand=brand,
        now=now,
        locked=_lock_view(challenge, program, state.completions, member, locale or member.locale),
        locale=locale or member.locale,
    )


class CompletionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One completed instance, for a member's data export."""

    challenge: str
    instance: str
    completed_at: datetime
    event: str


class MemberData(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the challenges package holds about one member (data export)."""

    challenges: list[MemberChallenge]
    completions: list[CompletionRecord]
    opt_ins: dict[str, datetime]
    """Campaign key → when the member opted in."""


async def member_data(session: AsyncSession, *, brand: Brand, member: Member, now: datetime) -> MemberData:
    """The member's challenges (ended ones included), completions and opt-ins."""
    challenges = await member_challenges(session, brand=brand, member=member, now=now, include_ended=True)
    completions = await member_completions(session, brand_id=brand.id, member_id=member.id)
    campaigns = {c.id: c.key for c in await stored_campaigns(session, brand_id=brand.id, include_archived=True)}
    opted = await enrolments(session, brand_id=brand.id, campaign_ids=set(campaigns), member_ids={member.id})
    return MemberData(
        challenges=challenges,
        completions=[
            CompletionRecord(challenge=key, instance=instance, completed_at=at, event=event)
            for key, instance, at, event in completions
        ],
        opt_ins={campaigns[campaign_id]: at for (campaign_id, _member), at in sorted(opted.items())},
    )
