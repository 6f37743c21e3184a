"""The pipeline step that upgrades members inside the event's transaction.

It runs after points and challenges (it counts what they awarded). Per unit of work it makes one upsert
of the members' day counters, one read of their window totals and one of their current tiers; a member
who now reaches a higher tier is upgraded on the event that crossed the threshold, exactly once (the
member rows are locked by the pipeline, and a tier history row is unique per member and version). The
unit's upgrades are written together at the end (:func:`tiers.changes.set_tiers`: a few statements
whatever their number).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from engine.cache import BrandCache
from engine.effects import BadgeAwarded, Notification, TierChanged
from engine.periods import local_day
from tiers import changes as changes_repo
from tiers import repository as repo
from tiers.rules import increment, is_upgrade, keep_until, review_at, window_days

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date, datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.grants import BadgeGranter
    from engine.ids import MemberId
    from engine.pipeline import EventContext, UnitOfWork
    from engine.tenants import Brand
    from tiers.models import TierProgram


class Programs:
    """The brands' tier programs, cached by configuration version; also the points step's tier multipliers."""

    def __init__(self) -> None:
        self._cache: BrandCache[TierProgram | None] = BrandCache()

    async def get(self, session: AsyncSession, *, brand: Brand, version: int) -> TierProgram | None:
        """The brand's program at ``version`` (``None``: no tiers)."""
        return await self._cache.get(brand.id, version, lambda: repo.load_program(session, brand.id))

    async def __call__(self, session: AsyncSession, *, brand: Brand, version: int) -> Mapping[str, float]:
        """Earning multiplier by tier key (an :class:`engine.grants.TierMultipliers`)."""
        program = await self.get(session, brand=brand, version=version)
        if program is None:
            return {}
        return {t.key: t.multiplier for t in program.tiers if t.multiplier != 1.0}


class TiersProcessor:
    """Counts each unit of work into the members' metric and upgrades who qualifies."""

    name = "tiers"

    def __init__(self, programs: Programs, *, grant_badge: BadgeGranter | None = None) -> None:
        self._programs = programs
        self._grant_badge = grant_badge

    async def process(self, uow: UnitOfWork) -> None:
        """Add the unit's increments to the day counters and upgrade members on the event that qualifies them."""
        program = await self._programs.get(uow.session, brand=uow.brand, version=await uow.config_version())
        if program is None or not program.tiers:
            return
        metric = program.qualification.metric
        signature = metric.signature()
        tz = uow.tz
        steps: dict[MemberId, list[tuple[EventContext, date, float]]] = defaultdict(list)
        totals: dict[tuple[MemberId, date], float] = defaultdict(float)
        for ctx in uow.events:
            amount = increment(metric, ctx.event, ctx.effects)
            if amount:
                day = local_day(ctx.event.occurred_at, tz)
                steps[ctx.member_id].append((ctx, day, amount))
                totals[(ctx.member_id, day)] += amount
        if not steps:
            return
        brand_id = uow.brand.id
        await repo.add_counters(
            uow.session,
            [
                {"member_id": m, "metric": signature, "day": d, "brand_id": brand_id, "value": v}
                for (m, d), v in sorted(totals.items())
            ],
        )
        members = sorted(steps)
        since = await repo.member_since(uow.session, brand_id=brand_id, member_ids=members)
        today = local_day(uow.now, tz)
        bounds = {
            m: window_days(program.qualification.window, today, member_since=local_day(since[m], tz)) for m in members
        }
        counters = await repo.day_counters(
            uow.session, brand_id=brand_id, metric=signature, member_ids=members,
            first=min(first for first, _ in bounds.values()),
        )  # fmt: skip
        current = await repo.current_tiers(uow.session, brand_id=brand_id, member_ids=members)
        events_of: dict[MemberId, list[EventContext]] = defaultdict(list)  # in order: a member's later views
        for ctx in uow.events:
            events_of[ctx.member_id].append(ctx)
        changes: list[changes_repo.TierChange] = []
        for member_id in members:
            first, end = bounds[member_id]
            days = counters.get(member_id, {})
            value = sum(v for d, v in days.items() if first <= d < end)
            # Walk the member's events of this unit backwards from the total to find the crossing event.
            value -= sum(amount for _, day, amount in steps[member_id] if first <= day < end)
            for ctx, day, amount in steps[member_id]:
                if first <= day < end:
                    value += amount
                target = is_upgrade(program, current[member_id].tier, value)
                if target is None:
                    continue
                step = await self._upgrade(
                    uow, ctx, program, current[member_id], target.key, since[member_id], events_of[member_id]
                )
                changes.append(step)
                current[member_id] = step.after
        # The unit's changes in a few statements (a batch of new members can upgrade hundreds at once).
        await changes_repo.set_tiers(uow.session, brand_id=brand_id, changes=changes, now=uow.now)

    async def _upgrade(
        self, uow: UnitOfWork, ctx: EventContext, program: TierProgram, current: repo.Current, tier: str,
        member_since: datetime, members_events: list[EventContext],
    ) -> changes_repo.TierChange:  # fmt: skip
        """The upgrade's change (written with the unit's others) and its effects on the event."""
        qualification = program.qualification
        now = uow.now
        keep = keep_until(qualification.keep_months, now, uow.tz)
        step = changes_repo.changed(
            current, tier=tier, change="upgraded", now=now,
            review_at=review_at(qualification.window, now, uow.tz, member_since=member_since),
            keep_until=keep, event_key=ctx.event.id,
        )  # fmt: skip
        repo.count_change(uow.session, uow.brand, previous=current.tier, tier=tier)
        for later in members_events:  # the member's events of the unit (not every event: one upgrade each)
            if later.index >= ctx.index:
                later.member = {**later.member, "tier": tier}
        ctx.emit(TierChanged(tier=tier, previous=current.tier, change="upgraded"))
        ctx.emit(Notification(topic="tier.upgraded", data={"tier": tier, "previous": current.tier}))
        spec = program.get(tier)
        if spec is not None and spec.badge and self._grant_badge is not None:
            effects = await self._grant_badge(
                uow.session, brand=uow.brand, member_id=ctx.member_id, badge_key=spec.badge,
                reason=f"reached the {tier} tier", source="tier", source_ref=tier, now=now,
            )  # fmt: skip
            # The granter already wrote its points and notification; only the report joins the event's effects.
            for effect in effects:
                if isinstance(effect, BadgeAwarded):
                    ctx.emit(effect)
        return step

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update."""
