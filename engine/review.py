"""The review queue of events held by velocity limits: list, approve (applied once), reject.

Approving first marks the held event ``approved`` (committed), then runs the original event through the
pipeline with limits bypassed. The event log's idempotency key makes that exactly once: approving again
(a retry after a failure, or two reviewers at once) answers the first result as a duplicate. A rejected
event is never applied; it stays listed as rejected, and a resend of its id is answered as held.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy import delete, func, select, update

from engine import audit
from engine.errors import Conflict, NotFound
from engine.events import Event
from engine.records import HeldEventRow
from engine.velocity import PENDING

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId, MemberId
    from engine.pipeline import EventResult, Pipeline
    from engine.tenants import Brand

APPROVED = "approved"
REJECTED = "rejected"
Status = Literal["pending_review", "approved", "rejected"]


class HeldEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event in the review queue."""

    id: int
    event_id: str
    member: str
    type: str
    occurred_at: str
    properties: dict[str, Any]
    reason: str
    status: str
    held_at: datetime
    decided_at: datetime | None
    decided_by: str


class ReviewPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the queue, oldest first, and how many are waiting."""

    events: list[HeldEvent]
    pending: int
    next_after: int | None
    """Pass as ``after`` for the next page; ``None`` at the end."""


def _out(row: HeldEventRow) -> HeldEvent:
    payload = dict(row.payload or {})
    return HeldEvent(
        id=row.id,
        event_id=row.event_key,
        member=str(payload.get("member", "")),
        type=row.type,
        occurred_at=str(payload.get("occurred_at", "")),
        properties=dict(payload.get("properties") or {}),
        reason=row.reason,
        status=row.status,
        held_at=row.held_at,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
    )


async def queue(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    status: Status | None = "pending_review",
    after: int | None = None,
    limit: int = 50,
) -> ReviewPage:
    """The brand's held events (by default those waiting), oldest first."""
    query = select(HeldEventRow).where(HeldEventRow.brand_id == brand_id)
    if status is not None:
        query = query.where(HeldEventRow.status == status)
    if after is not None:
        query = query.where(HeldEventRow.id > after)
    rows = list((await session.scalars(query.order_by(HeldEventRow.id).limit(limit + 1))).all())
    pending = await session.scalar(
        select(func.count()).where(HeldEventRow.brand_id == brand_id, HeldEventRow.status == PENDING)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return ReviewPage(
        events=[_out(r) for r in rows], pending=int(pending or 0), next_after=rows[-1].id if more and rows else None
    )


async def _decide(
    db: Database, *, brand_id: BrandId, held_id: int, to: str, allowed: set[str], actor: str, now: datetime
) -> HeldEventRow:
    async with db.write() as session:
        row = await session.scalar(
            select(HeldEventRow).where(HeldEventRow.brand_id == brand_id, HeldEventRow.id == held_id).with_for_update()
        )
        if row is None:
            raise NotFound(f"no held event {held_id}", field="id")
        if row.status not in allowed:
            raise Conflict(f"held event {held_id} is already {row.status}", field="id")
        if row.status != to:
            await session.execute(
                update(HeldEventRow)
                .where(HeldEventRow.id == held_id)
                .values(status=to, decided_at=now, decided_by=actor[:200])
            )
            await audit.record(
                session, brand_id=brand_id, actor=actor, action=f"review.{to}", at=now,
                target=f"held event {held_id}", details={"type": row.type, "reason": row.reason},
            )  # fmt: skip
        session.expunge(row)
        return row


async def approve(
    db: Database, pipeline: Pipeline, *, brand: Brand, held_id: int, actor: str, now: datetime
) -> EventResult:
    """Approve a held event and apply it once through the pipeline (idempotent: approving again is a duplicate).

    Raises:
        NotFound: no such held event of the brand.
        Conflict: it was rejected.
    """
    row = await _decide(
        db, brand_id=brand.id, held_id=held_id, to=APPROVED, allowed={PENDING, APPROVED}, actor=actor, now=now
    )
    event = msgspec.convert(dict(row.payload or {}), Event, strict=False)
    (result,) = await pipeline.process(brand, [event], approved=True)
    return result


async def reject(db: Database, *, brand: Brand, held_id: int, actor: str, now: datetime) -> HeldEvent:
    """Reject a waiting held event: it is never applied.

    Raises:
        NotFound: no such held event of the brand.
        Conflict: it was already approved or rejected.
    """
    row = await _decide(db, brand_id=brand.id, held_id=held_id, to=REJECTED, allowed={PENDING}, actor=actor, now=now)
    row.status, row.decided_at, row.decided_by = REJECTED, now, actor[:200]
    return _out(row)


async def forget_member(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> None:
    """Erasure: drop the member's held events (their payloads carry the member's id and properties)."""
    await session.execute(
        delete(HeldEventRow).where(HeldEventRow.brand_id == brand_id, HeldEventRow.member_id == member_id)
    )


async def member_held(session: AsyncSession, *, brand_id: BrandId, member_id: MemberId) -> list[dict[str, Any]]:
    """Export: the member's held events."""
    rows = await session.scalars(
        select(HeldEventRow)
        .where(HeldEventRow.brand_id == brand_id, HeldEventRow.member_id == member_id)
        .order_by(HeldEventRow.id)
    )
    return [msgspec.to_builtins(_out(r)) for r in rows]
