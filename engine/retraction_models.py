"""The values a retraction speaks: the brand's policy, what a domain's undo gets and gives, the request's view.

See :mod:`engine.retraction` for how a retraction is applied.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.effects import Effect
    from engine.events import Event
    from engine.ids import MemberId
    from engine.orm import EventRetractionRow
    from engine.tenants import Brand

SETTINGS_KEY = "retraction"
SWEEP_SECONDS = 5.0
"""How often pending retractions are checked against the event log."""
#: The event property a partial refund reduces (the platforms' and Segment's purchase amount).
AMOUNT = "amount"
EPSILON = 1e-9


class RetractionPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The program document's ``retraction`` section.

    ``completions``: ``claw_back`` (default) revokes a completion the remaining events no longer reach,
    with its reward points and badge; ``keep`` leaves completions, rewards and badges as they were.
    """

    completions: Literal["claw_back", "keep"] = "claw_back"


def policy_of(settings: dict[str, Any]) -> RetractionPolicy:
    """The brand's retraction policy (the default when it never set one)."""
    return msgspec.convert((settings or {}).get(SETTINGS_KEY) or {}, RetractionPolicy)


@dataclass(frozen=True, slots=True)
class RetractedEvent:
    """What a domain's undo gets: the event as first processed, and how much of it is retracted now."""

    brand: Brand
    member_id: MemberId
    member: dict[str, Any]
    """The member's predicate view (attributes, locale, tier)."""
    event: Event
    """The event as logged (its full ``amount``)."""
    effects: list[Effect]
    """The effects it caused when first processed."""
    share_before: float
    """The share of the event already retracted by earlier partial refunds (0 for the first)."""
    share_after: float
    """The share retracted once this request is applied (1: the whole event)."""
    policy: RetractionPolicy
    now: datetime

    @property
    def whole(self) -> bool:
        """The event is retracted entirely once this applies."""
        return self.share_after >= 1.0 - EPSILON

    @property
    def share(self) -> float:
        """The share this request retracts."""
        return self.share_after - self.share_before


@dataclass(slots=True)
class Undone:
    """What one domain's undo did: a JSON-able report, and work to run after the commit."""

    report: dict[str, Any] = field(default_factory=dict)
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


class Retraction(msgspec.Struct, frozen=True, kw_only=True):
    """A retraction request and what applying it did."""

    event: str
    status: Literal["pending", "applied"]
    duplicate: bool = False
    """The same request was made before (nothing was done again)."""
    amount: float | None = None
    reason: str = ""
    source: str = ""
    received_at: datetime
    applied_at: datetime | None = None
    applied_to: str | None = None
    outcome: dict[str, Any] = {}


def view_of(row: EventRetractionRow, *, duplicate: bool = False) -> Retraction:
    """The request as the API answers it."""
    return Retraction(
        event=row.event_key,
        status="applied" if row.status == "applied" else "pending",
        duplicate=duplicate,
        amount=row.amount,
        reason=row.reason,
        source=row.source,
        received_at=row.received_at,
        applied_at=row.applied_at,
        applied_to=row.applied_to,
        outcome=dict(row.outcome or {}),
    )


def api_request_key(event_id: str, *, amount: float | None, idempotency_key: str | None) -> str:
    """The request key of an API retraction: one whole retraction per event; a partial one per request."""
    if amount is None:
        return f"api:{event_id}"
    return f"api:{event_id}:{idempotency_key or uuid.uuid4().hex}"
