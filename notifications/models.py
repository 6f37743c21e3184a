"""What a notification is, which outbox topics become one, and the pure timing rules for email.

Pure: no I/O. The feed and the email queue are the same rows (``notifications.orm``); this module decides
which member a webhook message concerns, whether the brand and the member want it by email, when quiet
hours hold it, when the member's daily digest goes out, and how long a failed send waits before a retry.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

#: Every kind of notification, in the order pages list them.
KINDS = (
    "badge_earned",
    "challenge_completed",
    "tier_changed",
    "points_expiring",
    "reward_redeemed",
    "overtaken",
    "referral_qualified",
)

#: Outbox topic → kind. ``overtaken`` has no topic: the pipeline step derives it from rank changes.
TOPIC_KINDS = {
    "badge.awarded": "badge_earned",
    "challenge.completed": "challenge_completed",
    "tier.upgraded": "tier_changed",
    "tier.downgraded": "tier_changed",
    "points.expiring": "points_expiring",
    "reward.redeemed": "reward_redeemed",
    "referral.qualified": "referral_qualified",
}

#: Delay before each email retry; after the last one the notification's email is marked failed.
RETRY_SCHEDULE = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
#: How long a claimed email stays invisible to other workers while it is being sent.
CLAIM_LEASE = timedelta(minutes=2)

SETTINGS_KEY = "notifications"
"""Where the brand's controls live in the brand's settings."""

Clock = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Kind = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class BrandControls(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which kinds are on (feed and email), quiet hours and the digest hour, in the brand's timezone."""

    enabled: list[Kind] = msgspec.field(default_factory=lambda: list(KINDS))
    email: bool = True
    """Whether notifications are also emailed (members choose per kind)."""
    quiet_start: Clock | None = None
    """Start of quiet hours (``"22:00"``): no email is sent from then until ``quiet_end``."""
    quiet_end: Clock | None = None
    digest_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = 9
    """When members who chose a daily digest receive it (local hour)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.enabled) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown notification kinds: {', '.join(unknown)}")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet hours need both a start and an end")


class MemberChoices(msgspec.Struct, frozen=True, kw_only=True):
    """A member's email preferences: kinds they do not want by email, and instant or one daily digest."""

    email_off: list[str] = msgspec.field(default_factory=list)
    digest: bool = False


class Item(msgspec.Struct, frozen=True, kw_only=True):
    """One notification as the feed, the API and the email templates see it."""

    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime
    read: bool = False


def controls_of(settings: dict[str, Any] | None) -> BrandControls:
    """The brand's controls from its settings (defaults: every kind on, email on, no quiet hours)."""
    raw = (settings or {}).get(SETTINGS_KEY)
    if not raw:
        return BrandControls()
    try:
        return msgspec.convert(raw, BrandControls)
    except msgspec.ValidationError:
        return BrandControls()


def recipients(topic: str, data: dict[str, Any]) -> list[tuple[str, str]]:
    """``(member external id, kind)`` pairs an outbox message of ``topic`` becomes (none for other topics).

    A qualified referral tells both the referrer (their friend qualified) and the friend (the welcome reward).
    """
    kind = TOPIC_KINDS.get(topic)
    if kind is None:
        return []
    if topic == "referral.qualified":
        out = []
        for key in ("referrer", "friend"):
            value = data.get(key)
            if isinstance(value, str) and value:
                out.append((value, kind))
        return out
    member = data.get("member")
    return [(member, kind)] if isinstance(member, str) and member else []


def _local(clock: str) -> time:
    hours, minutes = clock.split(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, tz: ZoneInfo, controls: BrandControls) -> datetime | None:
    """When quiet hours end if ``now`` falls inside them (an overnight range like 22:00–08:00 works), else ``None``."""
    if controls.quiet_start is None or controls.quiet_end is None:
        return None
    start, end = _local(controls.quiet_start), _local(controls.quiet_end)
    if start == end:
        return None
    local = now.astimezone(tz)
    here = local.time().replace(tzinfo=None)
    overnight = start > end
    inside = (here >= start or here < end) if overnight else (start <= here < end)
    if not inside:
        return None
    day = local.date()
    if overnight and here >= start:
        day += timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz)


def next_digest_at(now: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The next time the daily digest goes out: ``hour`` o'clock local, today if still ahead, else tomorrow."""
    local = now.astimezone(tz)
    at = datetime.combine(local.date(), time(hour), tzinfo=tz)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz)
    return at


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When the email is tried again after ``attempts`` failures, or ``None`` when it is given up."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    return now + RETRY_SCHEDULE[attempts - 1]


def wants_email(kind: str, controls: BrandControls, choices: MemberChoices) -> bool:
    """Whether this kind goes out by email at all (brand on, email on, the member did not turn it off)."""
    return controls.email and kind in controls.enabled and kind not in choices.email_off
