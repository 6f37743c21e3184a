"""Request and response bodies of the rewards endpoints (catalog, code pools, redemptions, points, liability)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from engine.events import AwareDatetime
from engine.point_views import ExpiringPoints, PendingPoints
from engine.points import LedgerEntry
from rewards.models import (
    Codes,
    Discount,
    Locale,
    MemberLimit,
    Redemption,
    RewardSpec,
    RewardType,
    Text,
)

IdempotencyKey = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class RewardIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A catalog entry as ``PUT /v1/rewards/{key}`` takes it (the key is the path's)."""

    name: dict[Locale, Annotated[str, msgspec.Meta(min_length=1, max_length=200)]]
    description: dict[Locale, Text] = {}
    image_url: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^(https?://\S+|/\S*)?$")] = ""
    cost: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]
    type: RewardType
    discount: Discount | None = None
    codes: Codes | None = None
    stock: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] | None = None
    low_stock_at: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] | None = None
    limit: MemberLimit | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    eligibility: dict[str, Any] | None = None
    visible: bool = True
    paused: bool = False

    def spec(self, key: str) -> RewardSpec:
        """The domain spec for ``key``."""
        return msgspec.convert({**msgspec.to_builtins(self), "key": key}, RewardSpec)


class CodeCounts(msgspec.Struct, frozen=True, kw_only=True):
    """A reward's code pool: codes free, issued, and voided (generated codes of cancelled redemptions)."""

    available: int
    issued: int
    void: int = 0


class RewardOut(msgspec.Struct, frozen=True, kw_only=True):
    """A catalog entry with its stock and code pool."""

    reward: RewardSpec
    remaining: int | None
    """Stock left (``None``: unlimited)."""
    issued: int
    """Redemptions out now (cancelled ones gave theirs back)."""
    codes: CodeCounts | None = None


class CodesIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A JSON code upload: the codes, or how many to generate from the reward's pattern."""

    codes: list[Annotated[str, msgspec.Meta(min_length=1, max_length=128)]] = []
    generate: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None


class RedemptionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Redeem a reward; the idempotency key (or the ``Idempotency-Key`` header) makes retries safe."""

    reward: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    idempotency_key: IdempotencyKey | None = None


class RedemptionAction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An optional reason for a cancel (kept with the redemption)."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class RedemptionOut(msgspec.Struct, frozen=True, kw_only=True):
    """A redemption with links to its code as a QR image."""

    redemption: Redemption
    qr_svg: str | None
    qr_png: str | None


class RedemptionPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of redemptions, newest first."""

    redemptions: list[Redemption]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; ``None`` at the end."""


class MemberPoints(msgspec.Struct, frozen=True, kw_only=True):
    """A member's points: available (``balance``, kept for compatibility), pending, expiring, lifetime, history."""

    member: str
    balance: int
    """Spendable points now (the same as ``available``)."""
    available: int
    pending: int
    pending_lots: list[PendingPoints]
    expiring: list[ExpiringPoints]
    lifetime_earned: int
    lifetime_spent: int
    as_of: datetime
    entries: list[LedgerEntry]
    next_before: int | None
    """Pass as ``before`` to get the next (older) page of entries; ``None`` at the end."""
