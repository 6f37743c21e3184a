"""Segments and offers operations outside the pipeline: explain, member offers, activation, the report."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec
from sqlalchemy import update

from engine.db import insert_for
from engine.errors import Conflict, NotFound
from segments import offer_repository as offers_repo
from segments import repository as repo
from segments.experiments import ArmReport, report
from segments.models import Explanation, SegmentDef, explain
from segments.offers import Arm, OfferDef, arm_of, targets
from segments.orm import OfferMemberRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import MemberId
    from engine.tenants import Brand
    from segments.processor import Segments


async def segment(session: AsyncSession, *, brand: Brand, slug: str) -> SegmentDef:
    """The brand's segment ``slug``.

    Raises:
        NotFound: no such segment.
    """
    found = next((s for s in await repo.load_segments(session, brand.id) if s.slug == slug), None)
    if found is None:
        raise NotFound(f"no segment {slug!r} in this brand", field="slug")
    return found


async def explain_member(
    session: AsyncSession, *, brand: Brand, segments: Segments, slug: str, external_id: str, now: datetime
) -> tuple[repo.MemberFacts, Explanation]:
    """Whether the member is in the segment, clause by clause with the metric values.

    Raises:
        NotFound: no such segment or member.
    """
    defn = await segment(session, brand=brand, slug=slug)
    member = await repo.member_by_external_id(
        session, brand_id=brand.id, external_id=external_id, segments=[defn], now=now, sources=segments.sources
    )
    if member is None:
        raise NotFound(f"no member {external_id!r} in this brand", field="external_id")
    return member, explain(defn, member.facts, member.view, now)


class MemberOffer(msgspec.Struct, frozen=True, kw_only=True):
    """An offer as its member sees it."""

    key: str
    title: str
    description: str
    kind: str
    multiplier: float | None
    points: int | None
    event_type: str
    ends_at: datetime
    opt_in: bool
    active: bool
    """Applies now: not opt-in, or activated."""
    uses_left: int


def _variant(offer: OfferDef, arm: Arm | None) -> tuple[float | None, int | None]:
    if offer.kind == "multiplier":
        return (arm.multiplier if arm is not None and arm.multiplier else offer.multiplier), None
    return None, (arm.points if arm is not None and arm.points else offer.points)


async def member_offers(
    session: AsyncSession, *, brand: Brand, segments: Segments, member_id: MemberId, external_id: str,
    locale: str, now: datetime,
) -> list[MemberOffer]:  # fmt: skip
    """The live offers that target the member (a control arm sees none), with activation and uses left."""
    live = [o for o in await offers_repo.load_offers(session, brand.id) if o.spec.starts_at <= now < o.spec.ends_at]
    if not live:
        return []
    held = (await segments(session, brand=brand, member_ids=[member_id], now=now)).get(member_id, frozenset())
    states = await offers_repo.states(session, offer_ids=[o.id for o in live], member_ids=[member_id])
    out = []
    for offer in live:
        spec = offer.spec
        arm = arm_of(spec, external_id)
        if not targets(spec, member=external_id, segments=held) or (arm is not None and arm.control):
            continue
        state = states.get((offer.id, member_id))
        multiplier, points = _variant(spec, arm)
        out.append(
            MemberOffer(
                key=spec.key, title=spec.text(spec.title, locale) or spec.key,
                description=spec.text(spec.description, locale), kind=spec.kind, multiplier=multiplier,
                points=points, event_type=spec.event_type, ends_at=spec.ends_at, opt_in=spec.opt_in,
                active=not spec.opt_in or (state is not None and state.activated_at is not None),
                uses_left=spec.per_member_limit - (state.uses if state is not None else 0),
            )
        )  # fmt: skip
    return out


async def activate(
    session: AsyncSession, *, brand: Brand, segments: Segments, member_id: MemberId, external_id: str, key: str,
    now: datetime,
) -> None:  # fmt: skip
    """Activate an opt-in offer for the member (again: no change).

    Raises:
        NotFound: no live offer ``key`` for this member (unknown, ended, not targeted, or control arm).
        Conflict: the offer needs no activation.
    """
    offers = await member_offers(
        session, brand=brand, segments=segments, member_id=member_id, external_id=external_id, locale="", now=now
    )
    found = next((o for o in offers if o.key == key), None)
    if found is None:
        raise NotFound(f"no offer {key!r} for this member", field="key")
    if not found.opt_in:
        raise Conflict(f"offer {key!r} applies without activation", field="key")
    offer = next(o for o in await offers_repo.load_offers(session, brand.id) if o.spec.key == key)
    arm = arm_of(offer.spec, external_id)
    insert = insert_for(session)(OfferMemberRow.__table__)
    await session.execute(
        insert.values(
            offer_id=offer.id, member_id=member_id, brand_id=brand.id, arm=arm.key if arm else "", assigned_at=now,
            activated_at=now, uses=0, points=0, events=0,
        ).on_conflict_do_nothing(index_elements=["offer_id", "member_id"])
    )  # fmt: skip
    await session.execute(
        update(OfferMemberRow)
        .where(
            OfferMemberRow.offer_id == offer.id,
            OfferMemberRow.member_id == member_id,
            OfferMemberRow.activated_at.is_(None),
        )
        .values(activated_at=now)
    )


class OfferReport(msgspec.Struct, kw_only=True):
    """An offer's results: what it has given of its budget, and each arm (one ``""`` arm without an experiment)."""

    offer: str
    budget: int | None
    given: int
    arms: list[ArmReport]


async def offer_report(session: AsyncSession, *, brand: Brand, key: str) -> OfferReport:
    """The offer's report, per arm.

    Raises:
        NotFound: no such offer.
    """
    offer = next((o for o in await offers_repo.load_offers(session, brand.id) if o.spec.key == key), None)
    if offer is None:
        raise NotFound(f"no offer {key!r} in this brand", field="key")
    totals = await offers_repo.arm_totals(session, offer=offer)
    return OfferReport(offer=key, budget=offer.spec.budget, given=offer.given, arms=report(totals))
