"""Tiers' part of a retraction: take the event's share off the member's qualification counter.

The tier metric's day counter of the day the event occurred is lowered by the retracted share of what the
event added (its own earning-rule points for ``points_earned``; an ``event_count`` only when it is retracted
whole; a ``challenges_completed`` metric keeps its count). Progress towards the next tier reflects it at once; the member's current tier follows at their
next review, like any other drop of the metric (a tier is not taken away in the middle of its window).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.effects import ChallengeCompleted, PointsAwarded
from engine.periods import local_day
from engine.retraction_models import Undone
from tiers import repository as repo
from tiers.rules import increment

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.retraction_models import RetractedEvent


class TiersUndo:
    """:class:`engine.grants.EventUndo` for tiers."""

    name = "tiers"

    async def undo(self, session: AsyncSession, target: RetractedEvent) -> Undone:
        """Lower the qualification counter of the event's day by the retracted share."""
        program = await repo.load_program(session, target.brand.id)
        if program is None or not program.tiers:
            return Undone()
        metric = program.qualification.metric
        own = [
            e
            for e in target.effects
            if not isinstance(e, ChallengeCompleted) and (not isinstance(e, PointsAwarded) or e.source == "rule")
        ]
        added = increment(metric, target.event, own)
        if not added:
            return Undone()
        removed = (added if target.whole else 0.0) if metric.kind == "event_count" else added * target.share
        if not removed:
            return Undone()
        day = local_day(target.event.occurred_at, target.brand.tz)
        await repo.add_counters(
            session,
            [
                {
                    "member_id": target.member_id,
                    "metric": metric.signature(),
                    "day": day,
                    "brand_id": target.brand.id,
                    "value": -removed,
                }
            ],
        )
        return Undone(report={"metric": metric.kind, "removed": round(removed, 6), "day": day.isoformat()})
