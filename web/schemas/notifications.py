"""Request and response bodies of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec


class NotificationOut(msgspec.Struct, frozen=True, kw_only=True):
    """One notification in a member's feed."""

    id: int
    kind: str
    """``badge_earned``, ``challenge_completed``, ``tier_changed``, ``points_expiring``, ``reward_redeemed``,
    ``overtaken`` or ``referral_qualified``."""
    data: dict[str, Any]
    """What it is about (the badge, challenge, tier, points, reward, board…)."""
    text: str
    """A one-line summary in the member's language."""
    created_at: datetime
    read: bool


class NotificationsOut(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a member's feed, newest first, with the unread count."""

    member: str
    unread: int
    items: list[NotificationOut]
    next_before: int | None = None
    """Pass as ``before`` for the next (older) page; ``null`` at the end."""


class MarkReadIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which notifications to mark read: ``ids``, or every unread one when ``ids`` is ``null``."""

    ids: Annotated[list[Annotated[int, msgspec.Meta(ge=1)]], msgspec.Meta(max_length=500)] | None = None


class MarkReadOut(msgspec.Struct, frozen=True, kw_only=True):
    """How many were marked and how many stay unread."""

    marked: int
    unread: int
