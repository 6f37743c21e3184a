"""The offers pipeline step: bonuses on qualifying events, per-member limits, the budget, experiment arms.

It runs after points (a multiplier offer multiplies what the event's earning rules gave) and after the
segments step (a segment-targeted offer reads the member's segments from the event's member view). A brand
without an offer live now adds nothing. With one, a unit whose events qualify costs one read of the
members' offer state, one conditional ``UPDATE`` of each granting offer's budget and one upsert of the
states — per unit of work, not per event.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.cache import BrandCache
from engine.effects import PointsAwarded
from engine.predicates import SEGMENTS_KEY
from segments import offer_repository as repo
from segments.offers import arm_of, bonus, qualifies, targets, validate

if TYPE_CHECKING:
    from datetime import datetime

    from engine.ids import MemberId
    from engine.pipeline import EventContext, UnitOfWork
    from engine.predicates import Predicate
    from segments.offers import OfferDef


@dataclass(frozen=True, slots=True)
class Live:
    """An offer as the step uses it: row id, definition and parsed filter."""

    id: int
    spec: OfferDef
    predicate: Predicate | None


class Offers:
    """The brands' offers, cached by configuration version."""

    def __init__(self) -> None:
        self._cache: BrandCache[list[Live]] = BrandCache()

    async def get(self, uow: UnitOfWork) -> list[Live]:
        """The brand's offers at the unit's configuration version."""

        async def load() -> list[Live]:
            offers = await repo.load_offers(uow.session, uow.brand.id)
            return [Live(o.id, o.spec, validate(o.spec)[1]) for o in offers]

        return await self._cache.get(uow.brand.id, await uow.config_version(), load)


def _new_state(offer: Live, ctx: EventContext, *, now: datetime) -> repo.State:
    """A member's first state in an offer: their experiment arm, assigned now."""
    arm = arm_of(offer.spec, ctx.event.member)
    return repo.State(
        offer_id=offer.id, member_id=ctx.member_id, arm=arm.key if arm else "", assigned_at=now, activated_at=None
    )


def _use(offer: Live, ctx: EventContext, state: repo.State) -> int:
    """Count the event in the member's state; the bonus it earns (0: none — not activated, limit, nothing earned)."""
    state.events += 1
    if (offer.spec.opt_in and state.activated_at is None) or state.uses >= offer.spec.per_member_limit:
        return 0
    earned = sum(e.points for e in ctx.effects if isinstance(e, PointsAwarded) and e.source == "rule")
    points = bonus(offer.spec, arm_of(offer.spec, ctx.event.member), earned=earned)
    if points <= 0:
        return 0
    state.uses += 1
    state.points += points
    return points


class OffersStep:
    """Gives offers' bonuses on qualifying events, within limits and budgets; records experiment exposure."""

    name = "offers"

    def __init__(self, offers: Offers) -> None:
        self._offers = offers

    async def process(self, uow: UnitOfWork) -> None:
        """Match the unit's events with the live offers and give what the limits and budgets allow."""
        live = [o for o in await self._offers.get(uow) if o.spec.starts_at <= uow.now < o.spec.ends_at]
        if not live:
            return
        hits = [(ctx, offer) for ctx in uow.events for offer in live if _hits(ctx, offer)]
        if not hits:
            return
        members = sorted({ctx.member_id for ctx, _ in hits})
        found = await repo.states(uow.session, offer_ids=sorted({o.id for o in live}), member_ids=members)
        changed: dict[tuple[int, MemberId], repo.State] = {}
        grants: dict[int, list[tuple[EventContext, Live, repo.State, int]]] = defaultdict(list)
        for ctx, offer in hits:
            key = (offer.id, ctx.member_id)
            state = found.get(key) or _new_state(offer, ctx, now=uow.now)
            found[key] = changed[key] = state
            points = _use(offer, ctx, state)
            if points:
                grants[offer.id].append((ctx, offer, state, points))
        for offer_id in sorted(grants):
            await self._grant(uow, grants[offer_id])
        await repo.save_states(uow.session, brand_id=uow.brand.id, changed=list(changed.values()))

    async def _grant(self, uow: UnitOfWork, items: list[tuple[EventContext, Live, repo.State, int]]) -> None:
        """Take the items' points from the budget at once, else one by one in event order (what fits)."""
        offer_id = items[0][1].id
        if await repo.take_budget(uow.session, offer_id=offer_id, points=sum(p for *_, p in items)):
            granted = items
        else:
            granted = []
            for item in items:
                if await repo.take_budget(uow.session, offer_id=offer_id, points=item[3]):
                    granted.append(item)
                else:  # the budget is spent: this use did not happen
                    item[2].uses -= 1
                    item[2].points -= item[3]
        for ctx, offer, _, points in granted:
            ctx.emit(PointsAwarded(points=points, source="offer", key=offer.spec.key))

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update."""


def _hits(ctx: EventContext, offer: Live) -> bool:
    event = ctx.event
    segments = ctx.member.get(SEGMENTS_KEY) or frozenset()
    return targets(offer.spec, member=event.member, segments=segments) and qualifies(
        offer.spec, offer.predicate, event_type=event.type, properties=event.properties, member=ctx.member,
        occurred_at=event.occurred_at,
    )  # fmt: skip
