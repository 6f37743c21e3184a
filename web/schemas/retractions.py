"""Request and response bodies of ``POST /v1/events/{id}/retract``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec


class RetractIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to retract: the whole event, or part of its ``amount`` (a partial refund)."""

    amount: Annotated[float, msgspec.Meta(gt=0, le=1e12)] | None = None
    """The refunded part of the event's ``amount`` property; absent: the whole event."""
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""
    if_unknown: Literal["reject", "remember"] = "reject"
    """An id not logged (yet): ``reject`` answers 404; ``remember`` stores it (202) and applies it on arrival."""


class RetractionOut(msgspec.Struct, frozen=True, kw_only=True):
    """A retraction and what applying it undid (``outcome``; empty while ``pending``)."""

    event: str
    status: Literal["pending", "applied"]
    duplicate: bool
    """The same retraction was asked before: nothing was done again."""
    amount: float | None
    reason: str
    source: str
    received_at: datetime
    applied_at: datetime | None
    applied_to: str | None
    outcome: dict[str, Any]
