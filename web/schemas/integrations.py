"""Request and response bodies of the integrations endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec


class SourceIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A platform's webhook settings (``PUT /v1/integrations/{platform}``)."""

    secret: Annotated[str, msgspec.Meta(min_length=8, max_length=255)]
    """The shared secret the platform signs webhooks with (never returned)."""
    shop_domain: Annotated[str, msgspec.Meta(max_length=255)] = ""
    member_key: Literal["email", "customer_id"] = "email"
    """How an order names the member: the customer's email (lower-cased) or the platform's customer id."""


class SourceOut(msgspec.Struct, frozen=True, kw_only=True):
    """A platform's settings as returned (without the secret)."""

    platform: str
    shop_domain: str
    member_key: str
    webhook_path: str
    updated_at: datetime
    secret_set: bool = True


class SourcesOut(msgspec.Struct, frozen=True, kw_only=True):
    """Every configured platform."""

    items: list[SourceOut]


class SegmentOk(msgspec.Struct, frozen=True, kw_only=True):
    """What Segment's tracking API answers."""

    success: bool = True


class HookOut(msgspec.Struct, frozen=True, kw_only=True):
    """What a platform webhook did: ``purchase``, ``retraction`` (stored for the retraction step) or ``ignored``."""

    outcome: Literal["purchase", "retraction", "ignored"]
    event_id: str | None = None
    duplicate: bool = False
    detail: str = ""
