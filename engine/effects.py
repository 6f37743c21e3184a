"""Effects: what processing an event caused, as values every domain package speaks.

Effects are a tagged union of frozen structs. Processors append them to an event's context; the
pipeline turns some into rows (points → ledger, notifications → outbox) and returns all of them in the
API response, so an app can celebrate at once. New fields must have defaults: stored results are
decoded again when a duplicate event is answered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec


class Effect(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """Base of every effect; the ``type`` tag names it on the wire.

    ``gc=False`` (inherited): effects hold plain values and never take part in a reference cycle, and a
    batch makes about ten per event, which would otherwise keep setting off garbage collections.
    """


class PointsAwarded(Effect, tag="points_awarded", frozen=True, kw_only=True):
    """Points posted to the member's ledger (negative for a correction)."""

    points: int
    source: str
    """What earned them: ``rule``, ``challenge``, ``badge``, ``board`` or ``adjustment``."""
    key: str
    """The key of the earning rule, challenge, badge or board."""
    multiplier: float = 1.0
    capped: bool = False
    """True when a daily cap cut the amount."""


class ProgressAdvanced(Effect, tag="progress_advanced", frozen=True, kw_only=True):
    """A challenge moved forward for the member."""

    challenge: str
    progress: float
    target: float
    instance: str = ""


class ChallengeCompleted(Effect, tag="challenge_completed", frozen=True, kw_only=True):
    """The member completed (an instance of) a challenge."""

    challenge: str
    instance: str = ""
    completed_at: datetime | None = None
    badge: str = ""
    """The key of the badge the challenge rewards, if any (the badges processor awards it)."""


class BadgeAwarded(Effect, tag="badge_awarded", frozen=True, kw_only=True):
    """A badge (or a level of it) was awarded."""

    badge: str
    level: str = ""
    count: int = 1
    award: str = ""
    """The award's public id: its hosted Open Badges assertion is ``/ob/v2/assertions/<award>``."""
    source: str = ""
    """What awarded it: ``rule``, ``challenge``, ``board``, ``manual`` or ``tier``."""


class BoardTotalChanged(Effect, tag="board_total_changed", frozen=True, kw_only=True):
    """A member's total on one period of one board changed (absolute value)."""

    board: str
    period: str
    score: float
    scope: str = ""


class RankChanged(Effect, tag="rank_changed", frozen=True, kw_only=True):
    """The member's rank on a board after the event."""

    board: str
    period: str
    rank: int
    score: float
    scope: str = ""
    """The scope value (e.g. the store) of a board kept per member attribute; ``""`` for one board."""
    total: int = 0
    """How many members the board (period and scope) holds, so an app can say "top 5%"."""


class TierChanged(Effect, tag="tier_changed", frozen=True, kw_only=True):
    """The member's tier changed (or was renewed): ``change`` is ``upgraded``, ``downgraded`` or ``renewed``."""

    tier: str | None = None
    previous: str | None = None
    change: str = "upgraded"


class Notification(Effect, tag="notification", frozen=True, kw_only=True):
    """Something to tell the brand's systems: becomes an outbox row and a signed webhook."""

    topic: str
    data: dict[str, Any] = {}


class EventRetracted(Effect, tag="event_retracted", frozen=True, kw_only=True):
    """An event was retracted (whole or a partial refund): its points, progress, boards and tier undone.

    Published to the outbox as ``event.retracted`` with the full outcome (see docs/integrations.md); it is
    never one of an event's own effects, so it is not in :data:`AnyEffect`.
    """

    topic: ClassVar[str] = "event.retracted"
    event: str
    whole: bool = True
    share: float = 1.0
    """The share of the event this retraction took back (1 for the whole event)."""
    points: int = 0
    """Points taken back (from the event's lots, then the member's other points)."""
    unrecovered: int = 0
    """Points that could not be taken back: already spent and no balance left (cap at zero)."""
    reason: str = ""


AnyEffect = (
    PointsAwarded
    | ProgressAdvanced
    | ChallengeCompleted
    | BadgeAwarded
    | BoardTotalChanged
    | RankChanged
    | Notification
    | TierChanged
)

effects_decoder = msgspec.json.Decoder(list[AnyEffect])
