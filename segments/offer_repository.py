"""Offers: SQL side. Definitions, the budget taken by a conditional UPDATE, members' offer state, report sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 (dataclass fields)
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import BigInteger, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from engine import tenants
from engine.db import batches, insert_for, one_of
from engine.errors import Conflict
from engine.ids import MemberId
from segments.experiments import ArmTotals
from segments.offers import OfferDef
from segments.orm import OfferMemberRow, OfferRow

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

_STATES = cast("Table", OfferMemberRow.__table__)


@dataclass(frozen=True, slots=True)
class Offer:
    """A stored offer: its id, definition and the points it has given."""

    id: int
    spec: OfferDef
    given: int


@dataclass(slots=True)
class State:
    """A member's state on an offer."""

    offer_id: int
    member_id: MemberId
    arm: str
    assigned_at: datetime
    activated_at: datetime | None
    uses: int = 0
    points: int = 0
    events: int = 0


async def load_offers(session: AsyncSession, brand_id: BrandId) -> list[Offer]:
    """The brand's offers, by key."""
    rows = await session.execute(
        select(OfferRow.id, OfferRow.spec, OfferRow.given).where(OfferRow.brand_id == brand_id).order_by(OfferRow.key)
    )
    return [Offer(id=r.id, spec=msgspec.convert(r.spec, OfferDef), given=r.given) for r in rows]


async def save_offer(session: AsyncSession, *, brand_id: BrandId, offer: OfferDef, now: datetime) -> bool:
    """Create or replace an offer (what it has given is kept); returns whether it was created.

    Raises:
        Conflict: the new budget is below what the offer has already given.
    """
    row = await session.scalar(
        select(OfferRow).where(OfferRow.brand_id == brand_id, OfferRow.key == offer.key).with_for_update()
    )
    spec = msgspec.to_builtins(offer)
    if row is None:
        session.add(OfferRow(brand_id=brand_id, key=offer.key, spec=spec, budget=offer.budget, given=0, updated_at=now))
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"offer {offer.key!r} was created concurrently", field="key") from exc
    else:
        if offer.budget is not None and offer.budget < row.given:
            raise Conflict(f"the offer has already given {row.given} points, above that budget", field="budget")
        row.spec, row.budget, row.updated_at = spec, offer.budget, now
    await tenants.bump_config_version(session, brand_id)
    return row is None


async def delete_offer(session: AsyncSession, *, brand_id: BrandId, key: str) -> bool:
    """Remove an offer and its members' state; returns whether it existed."""
    result = await session.execute(delete(OfferRow).where(OfferRow.brand_id == brand_id, OfferRow.key == key))
    gone = bool(getattr(result, "rowcount", 0))
    if gone:
        await tenants.bump_config_version(session, brand_id)
    return gone


async def take_budget(session: AsyncSession, *, offer_id: int, points: int) -> bool:
    """Add ``points`` to what the offer gave, only if that stays within its budget (one conditional UPDATE).

    Concurrent units queue on the offer's row; PostgreSQL re-checks the condition on the row a concurrent
    commit left, so the total never exceeds the budget (and the CHECK ``within_budget`` backs it up).
    """
    result = await session.execute(
        update(OfferRow)
        .where(OfferRow.id == offer_id, (OfferRow.budget.is_(None)) | (OfferRow.given + points <= OfferRow.budget))
        .values(given=OfferRow.given + points)
    )
    return bool(getattr(result, "rowcount", 0))


async def states(
    session: AsyncSession, *, offer_ids: list[int], member_ids: list[MemberId]
) -> dict[tuple[int, MemberId], State]:
    """The members' states on the offers (one statement in the common case)."""
    found: dict[tuple[int, MemberId], State] = {}
    if not offer_ids or not member_ids:
        return found
    for chunk in batches(session, member_ids):
        rows = await session.execute(
            select(OfferMemberRow).where(
                one_of(session, OfferMemberRow.member_id, chunk, BigInteger()),
                one_of(session, OfferMemberRow.offer_id, offer_ids, BigInteger()),
            )
        )
        for (row,) in rows:
            state = State(
                offer_id=row.offer_id, member_id=MemberId(row.member_id), arm=row.arm, assigned_at=row.assigned_at,
                activated_at=row.activated_at, uses=row.uses, points=row.points, events=row.events,
            )  # fmt: skip
            found[(state.offer_id, state.member_id)] = state
    return found


async def save_states(session: AsyncSession, *, brand_id: BrandId, changed: list[State]) -> None:
    """Write the changed states (one upsert for all of them)."""
    if not changed:
        return
    insert = insert_for(session)(_STATES)
    statement = insert.on_conflict_do_update(
        index_elements=["offer_id", "member_id"],
        set_={c: insert.excluded[c] for c in ("uses", "points", "events", "activated_at")},
    )
    await session.execute(
        statement,
        [
            {"offer_id": s.offer_id, "member_id": s.member_id, "brand_id": brand_id, "arm": s.arm,
             "assigned_at": s.assigned_at, "activated_at": s.activated_at, "uses": s.uses, "points": s.points,
             "events": s.events}
            for s in changed
        ],
    )  # fmt: skip


async def arm_totals(session: AsyncSession, *, offer: Offer) -> list[ArmTotals]:
    """Per arm: members, members who got the bonus, points, events and the sum of their squares."""
    rows = await session.execute(
        select(
            OfferMemberRow.arm,
            func.count(),
            func.sum(case((OfferMemberRow.uses > 0, 1), else_=0)),
            func.coalesce(func.sum(OfferMemberRow.points), 0),
            func.coalesce(func.sum(OfferMemberRow.events), 0),
            func.coalesce(func.sum(OfferMemberRow.events * OfferMemberRow.events), 0),
        )
        .where(OfferMemberRow.offer_id == offer.id)
        .group_by(OfferMemberRow.arm)
    )
    by_arm = {r[0]: r for r in rows}
    experiment = offer.spec.experiment
    arms = [(a.key, a.control) for a in experiment.arms] if experiment is not None else [("", False)]
    out = []
    for key, control in arms:
        row: Any = by_arm.get(key)
        out.append(
            ArmTotals(
                arm=key, control=control, members=int(row[1]) if row else 0, participants=int(row[2] or 0) if row else 0,
                points=int(row[3]) if row else 0, events=int(row[4]) if row else 0,
                events_sq=int(row[5]) if row else 0,
            )
        )  # fmt: skip
    return out


async def forget_member(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> None:
    """Remove an erased member's offer state (activation, uses, arm); offers' member lists are the brand's."""
    await session.execute(
        delete(OfferMemberRow).where(OfferMemberRow.brand_id == brand_id, OfferMemberRow.member_id == member_id)
    )
