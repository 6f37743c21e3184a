"""Response bodies of ``POST /v1/events`` (the request body is :mod:`engine.events`)."""

from __future__ import annotations

import msgspec

from engine.effects import AnyEffect


class EventResultOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one event caused."""

    id: str
    member: str
    duplicate: bool
    """True when this id was seen before: the first result is returned and nothing changed."""
    effects: list[AnyEffect]
    held: bool = False
    """True when a velocity limit held the event for review (``pending_review``): nothing of it was applied
    yet; the brand approves (applied once) or rejects it in the review queue. Left out when false."""


class BatchResultOut(msgspec.Struct, kw_only=True):
    """Results of a batch, in request order."""

    results: list[EventResultOut]
