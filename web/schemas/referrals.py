"""Request and response bodies of the referrals API."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec


class ReferralPolicyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The brand's referral policy: what qualifies a referred friend and what both sides get."""

    event: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "purchase"
    """The friend's event type that qualifies the referral (their first one that passes ``filter``)."""
    filter: dict[str, Any] | None = None
    """A predicate on that event, e.g. ``{"field": "properties.amount", "gte": 20}``."""
    referrer_points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    friend_points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    monthly_cap: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 10
    """Referrals paid to one referrer per calendar month in brand time; further ones are held for review."""


class ReferralLinkOut(msgspec.Struct, frozen=True, kw_only=True):
    """A member's referral code and the join link that carries it."""

    member: str
    code: str
    url: str


class ReviewIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A decision on a held referral."""

    approve: bool
