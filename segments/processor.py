"""The segments pipeline step, and segment membership for predicates outside the pipeline.

The step runs first. The metrics its segments need are scalar subqueries the pipeline reads in one
statement right after it locks the unit's members (:class:`engine.grants.LockColumns`), so the unit's
members arrive with their metrics as of before the unit, after whatever unit held a member's lock before.
The step then walks the unit's events in order, puts each member's segments into the event's member view
(``{"segment": slug}`` leaves of earning-rule filters, campaign eligibility and badge rules read them
there) and folds the event into the member's metrics, so the unit's next event of that member sees it. A brand without segments adds no column at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine import tenants
from engine.cache import BrandCache
from engine.predicates import with_segments
from segments import repository as repo
from segments.models import SegmentDef, advance, member_of, needed_clauses

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import MemberMetric
    from engine.ids import MemberId
    from engine.pipeline import UnitOfWork
    from engine.tenants import Brand


class Segments:
    """The brands' segments, cached by configuration version; an :class:`engine.grants.SegmentMembership`."""

    def __init__(self, sources: Mapping[str, MemberMetric] | None = None) -> None:
        self.sources: Mapping[str, MemberMetric] = dict(sources or {})
        self._cache: BrandCache[list[SegmentDef]] = BrandCache()

    async def get(self, session: AsyncSession, *, brand: Brand, version: int) -> list[SegmentDef]:
        """The brand's segments at configuration ``version``."""
        return await self._cache.get(brand.id, version, lambda: repo.load_segments(session, brand.id))

    async def __call__(
        self, session: AsyncSession, *, brand: Brand, member_ids: Sequence[MemberId], now: datetime
    ) -> Mapping[MemberId, frozenset[str]]:
        """The segments each member is in at ``now`` (one statement for all of them)."""
        segments = await self.get(session, brand=brand, version=await tenants.config_version(session, brand.id))
        if not segments:
            return {m: frozenset() for m in member_ids}
        found = await repo.facts_of(
            session, brand_id=brand.id, member_ids=list(member_ids), segments=segments, now=now, sources=self.sources
        )
        return {
            m: frozenset(s.slug for s in segments if m in found and member_of(s, found[m].facts, found[m].view, now))
            for m in member_ids
        }


class SegmentsStep:
    """Puts each event's member segments into its member view, from metrics read with the member lock."""

    name = "segments"

    def __init__(self, segments: Segments) -> None:
        self._segments = segments

    async def lock_columns(
        self, session: AsyncSession, *, brand: Brand, version: int, now: datetime
    ) -> Mapping[str, Any]:
        """The metrics the brand's segments need, as columns the pipeline reads once the members are locked."""
        segments = await self._segments.get(session, brand=brand, version=version)
        return repo.columns(needed_clauses(segments), now=now, sources=self._segments.sources)

    async def process(self, uow: UnitOfWork) -> None:
        """Evaluate the brand's segments for each event's member, in event order."""
        segments = await self._segments.get(uow.session, brand=uow.brand, version=await uow.config_version())
        if not segments:
            return
        clauses = needed_clauses(segments)
        state: dict[MemberId, dict[str, Any]] = {}
        for ctx in uow.events:
            facts = state.setdefault(ctx.member_id, dict(ctx.facts))
            slugs = frozenset(s.slug for s in segments if member_of(s, facts, ctx.member, uow.now))
            ctx.member = with_segments(ctx.member, slugs)
            event = ctx.event
            advance(
                clauses, facts, event_type=event.type, properties=event.properties, occurred_at=event.occurred_at,
                now=uow.now,
            )  # fmt: skip

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update."""
