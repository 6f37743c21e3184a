"""Retraction: undo an event everywhere, exactly once (a refund, a deleted review).

A request (``POST /v1/events/{id}/retract``, a Shopify/WooCommerce refund, Segment's "Order Refunded") is
stored once per ``request_key`` in ``event_retractions``. If its event is known it is applied at once; if
not it stays ``pending`` and is applied when the event arrives (out-of-order delivery): the request path
looks again after storing it, and :func:`Retractions.apply_pending` (a background job, every
:data:`SWEEP_SECONDS`) applies every pending request whose event is now logged. Applying is one
transaction, under the member's lock (live events for the member wait), that claims the request
(``pending`` → ``applied``, so racing appliers apply it once) and then:

- marks the event in the log (``retracted_at`` when whole, ``refunded`` for a partial refund of its
  ``amount``): every replay of the event log skips it or sees the rest of the amount;
- takes back the event's own points (earning-rule lots) in proportion (:mod:`engine.reversal`);
- runs each domain's undo (engine Protocol :class:`engine.grants.EventUndo`, wired in ``web/wiring.py``):
  challenges re-fold the member's progress without it, boards take its contribution off, tiers their
  qualification counter;
- writes the ``event.retracted`` outbox row (:class:`engine.effects.EventRetracted`).

Post-commit work the undos ask for (Redis board standings) runs after the commit.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from sqlalchemy import and_, insert, or_, select, update

from engine import member_locks, reversal
from engine import members as members_repo
from engine.db import insert_for
from engine.effects import EventRetracted, effects_decoder
from engine.errors import NotFound, ValidationError
from engine.eventlog import member_events
from engine.events import Event
from engine.ids import BrandId, MemberId
from engine.orm import BrandRow, EventRetractionRow, EventRow, MemberRow, OutboxRow
from engine.retraction_models import (
    AMOUNT,
    EPSILON,
    RetractedEvent,
    Retraction,
    RetractionPolicy,
    policy_of,
    view_of,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.clock import Clock
    from engine.db import Database
    from engine.grants import EventUndo
    from engine.tenants import Brand

log = logging.getLogger(__name__)
ORDER_MARGIN = timedelta(minutes=5)
"""A sweep tries pending refunds by order again for members with events received since the previous sweep, less this."""


class Retractions:
    """Stores retraction requests and applies them exactly once, with every domain's undo."""

    def __init__(
        self, db: Database, *, clock: Clock, undos: Sequence[EventUndo], notify: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self._undos = tuple(undos)
        self._notify = notify
        self._swept_at: datetime | None = None

    async def request(
        self,
        brand: Brand,
        *,
        event_key: str,
        amount: float | None,
        reason: str = "",
        source: str = "api",
        request_key: str,
        by: Literal["event_id", "order_id"] = "event_id",
        member: str = "",
        remember: bool = True,
    ) -> Retraction:
        """Store the request once and apply it if its event is known.

        Raises:
            NotFound: ``remember`` is off and no such event is logged for the brand.
            ValidationError: a partial refund by API of an event without a positive ``amount`` property.
        """
        if amount is not None and not (math.isfinite(amount) and amount > 0):
            raise ValidationError("a refunded amount is a positive number", field="amount")
        async with self.db.read() as session:
            existing = await self._by_request(session, brand, request_key)
            logged = await _find_event(session, brand, by=by, key=event_key, member=member)
            if existing is None and logged is not None and logged.retracted_at is not None:
                whole = await self._applied_whole(session, brand, logged.event_key)
                if whole is not None:
                    return view_of(whole, duplicate=True)
        if existing is not None:
            return view_of(existing, duplicate=True)
        if logged is None and not remember:
            raise NotFound(f"no event {event_key!r}", field="id")
        if logged is not None and amount is not None and source == "api":
            _refundable(logged)  # a platform's refund of an order without an amount retracts it whole instead
        async with self.db.write() as session:
            statement = (
                insert_for(session)(_TABLE)
                .values(
                    brand_id=brand.id,
                    request_key=request_key,
                    event_key=event_key,
                    by=by,
                    member=member,
                    amount=amount,
                    reason=reason,
                    source=source,
                    status="pending",
                    received_at=self.clock.now(),
                    outcome={},
                )
                .on_conflict_do_nothing(index_elements=["brand_id", "request_key"])
            )
            new = bool(getattr(await session.execute(statement), "rowcount", 0))
        async with self.db.read() as session:
            row = await self._by_request(session, brand, request_key)
        assert row is not None  # stored above, or by a concurrent identical request
        if new:
            await self._apply(brand, row.id)  # also when unknown a moment ago: the event may have just arrived
            async with self.db.read() as session:
                row = await self._by_request(session, brand, request_key)
            assert row is not None
        return view_of(row, duplicate=not new)

    async def apply_pending(self, brand_id: int | None = None) -> int:
        """Apply every pending request whose event is logged now; returns how many were applied.

        Only requests whose event may be there are tried (one indexed read): by id, the event is logged; by
        order, the member has an event received since shortly before the previous sweep.
        """
        started = self.clock.now()
        since = None if self._swept_at is None else self._swept_at - ORDER_MARGIN
        r = EventRetractionRow
        by_id = select(EventRow.id).where(EventRow.brand_id == r.brand_id, EventRow.event_key == r.event_key).exists()
        by_order = (
            select(EventRow.id)
            .join(MemberRow, MemberRow.id == EventRow.member_id)
            .where(
                MemberRow.brand_id == r.brand_id,
                MemberRow.external_id == r.member,
                *([] if since is None else [EventRow.received_at >= since]),
            )
            .exists()
        )
        async with self.db.read() as session:
            query = select(r.id, r.brand_id).where(
                r.status == "pending",
                or_(and_(r.by == "event_id", by_id), and_(r.by == "order_id", by_order)),
            )
            if brand_id is not None:
                query = query.where(EventRetractionRow.brand_id == brand_id)
            pending = list(await session.execute(query.order_by(EventRetractionRow.id).limit(1000)))
        self._swept_at = started
        if not pending:
            return 0
        from engine.tenants import get_brand_by_id  # a sweep is rare; brands are read only when there is work

        applied = 0
        brands: dict[int, Brand] = {}
        for retraction_id, owner in pending:
            if owner not in brands:
                async with self.db.read() as session:
                    brands[owner] = await get_brand_by_id(session, BrandId(owner))
            applied += await self._apply(brands[owner], retraction_id)
        return applied

    async def for_event(self, brand: Brand, event_key: str) -> list[Retraction]:
        """The retractions applied to ``event_key`` (for the explain view), oldest first."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(EventRetractionRow)
                .where(EventRetractionRow.brand_id == brand.id, EventRetractionRow.applied_to == event_key)
                .order_by(EventRetractionRow.id)
            )
            return [view_of(row) for row in rows]

    async def _by_request(self, session: AsyncSession, brand: Brand, request_key: str) -> EventRetractionRow | None:
        return await session.scalar(
            select(EventRetractionRow).where(
                EventRetractionRow.brand_id == brand.id, EventRetractionRow.request_key == request_key
            )
        )

    async def _applied_whole(self, session: AsyncSession, brand: Brand, event_key: str) -> EventRetractionRow | None:
        return await session.scalar(
            select(EventRetractionRow)
            .where(EventRetractionRow.brand_id == brand.id, EventRetractionRow.applied_to == event_key)
            .order_by(EventRetractionRow.id.desc())
            .limit(1)
        )

    async def _apply(self, brand: Brand, retraction_id: int) -> int:
        """Apply one pending request if its event is logged (one transaction); 1 when it did."""
        later: list[Callable[[], Awaitable[None]]] = []
        async with self.db.write() as session:
            row = await session.get(EventRetractionRow, retraction_id)
            if row is None or row.status != "pending":
                return 0
            logged = await _find_event(session, brand, by=row.by, key=row.event_key, member=row.member)  # type: ignore[arg-type]
            if logged is None:
                return 0
            external_id = await session.scalar(select(MemberRow.external_id).where(MemberRow.id == logged.member_id))
            now = self.clock.now()
            locked = await member_locks.ensure_and_lock(
                session, db=self.db, brand_id=brand.id, external_ids=[str(external_id)], now=now
            )
            claimed = await session.execute(
                update(_TABLE)
                .where(_TABLE.c.id == retraction_id, _TABLE.c.status == "pending")
                .values(status="applied", applied_at=now, applied_to=logged.event_key)
            )
            if not getattr(claimed, "rowcount", 0):
                return 0  # a concurrent applier took it
            await session.refresh(logged)
            member = locked[str(external_id)]
            settings = await session.scalar(select(BrandRow.settings).where(BrandRow.id == brand.id))
            target = _target(brand, logged, member, row.amount, now, policy_of(settings or {}))
            await session.execute(
                update(EventRow)
                .where(EventRow.id == logged.id)
                .values(
                    refunded=(logged.refunded or 0.0) + _refund_of(logged, target),
                    retracted_at=now if target.whole else None,
                )
            )
            outcome = await self._undo(session, target, later)
            outcome["reason"] = row.reason
            await session.execute(update(_TABLE).where(_TABLE.c.id == retraction_id).values(outcome=outcome))
            await _notify(session, brand, target, external_id=str(external_id), outcome=outcome, now=now)
        for step in later:
            try:
                await step()
            except Exception:  # derived state (Redis): repaired by the boards' catch-up
                log.exception("post-commit retraction step failed")
        if self._notify is not None:
            self._notify()
        return 1

    async def _undo(
        self, session: AsyncSession, target: RetractedEvent, later: list[Callable[[], Awaitable[None]]]
    ) -> dict[str, Any]:
        brand, event = target.brand, target.event
        earned = await reversal.earned_by(
            session, brand, member_id=target.member_id, event_key=event.id, sources=("rule",)
        )
        total = sum(earned.values())
        due = round(total * target.share_after) - round(total * target.share_before)
        taken = await reversal.take_back(
            session, brand, member_id=target.member_id, event_key=event.id, lot_ids=list(earned), points=due,
            reason=f"retraction of event {event.id}", now=target.now,
        )  # fmt: skip
        outcome: dict[str, Any] = {
            "whole": target.whole,
            "share": round(target.share, 6),
            "points": {"cancelled": taken.cancelled, "clawed_back": taken.clawed, "unrecovered": taken.unrecovered},
            "policy": target.policy.completions,
        }
        for undo in self._undos:
            done = await undo.undo(session, target)
            if done.report:
                outcome[undo.name] = done.report
            later.extend(done.after_commit)
        return outcome


_TABLE: Table = EventRetractionRow.__table__  # type: ignore[assignment]


async def _find_event(
    session: AsyncSession, brand: Brand, *, by: Literal["event_id", "order_id"], key: str, member: str
) -> EventRow | None:
    """The logged event a request references: by id, or the member's event whose ``order_id`` property is ``key``."""
    if by == "event_id":
        return await session.scalar(select(EventRow).where(EventRow.brand_id == brand.id, EventRow.event_key == key))
    member_id = await session.scalar(
        select(MemberRow.id).where(MemberRow.brand_id == brand.id, MemberRow.external_id == member)
    )
    if member_id is None:
        return None
    events = await member_events(
        session, brand_id=brand.id, member_id=MemberId(member_id), external_id=member, include_retracted=True
    )
    for event, _received in events:
        if str(event.properties.get("order_id", "")) == key or event.id == key:
            return await session.scalar(
                select(EventRow).where(EventRow.brand_id == brand.id, EventRow.event_key == event.id)
            )
    return None


def _refundable(logged: EventRow) -> float:
    """The event's ``amount`` (for a partial refund).

    Raises:
        ValidationError: the event has no positive numeric ``amount`` property.
    """
    value = (logged.properties or {}).get(AMOUNT)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValidationError(
            f"event {logged.event_key!r} has no positive `amount` property to refund part of", field="amount"
        )
    return float(value)


def _target(
    brand: Brand,
    logged: EventRow,
    member: members_repo.Member,
    amount: float | None,
    now: datetime,
    policy: RetractionPolicy,
) -> RetractedEvent:
    value = (logged.properties or {}).get(AMOUNT)
    full = float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
    before = 0.0 if full is None else min(1.0, (logged.refunded or 0.0) / full)
    # A partial refund of an event without an amount (stored before it arrived) retracts it whole.
    after = 1.0 if amount is None or full is None else min(1.0, before + amount / full)
    event = Event(
        id=logged.event_key,
        member=member.external_id,
        type=logged.type,
        occurred_at=logged.occurred_at,
        properties=dict(logged.properties or {}),
    )
    return RetractedEvent(
        brand=brand, member_id=member.id, member=member.predicate_view, event=event, effects=list(effects_decoder.decode(logged.result)),
        share_before=before, share_after=1.0 if after >= 1.0 - EPSILON else after, policy=policy,
        now=now,
    )  # fmt: skip


def _refund_of(logged: EventRow, target: RetractedEvent) -> float:
    value = (logged.properties or {}).get(AMOUNT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value) * target.share


async def _notify(
    session: AsyncSession,
    brand: Brand,
    target: RetractedEvent,
    *,
    external_id: str,
    outcome: dict[str, Any],
    now: datetime,
) -> None:
    """The ``event.retracted`` outbox row (Standard Webhooks envelope, as the pipeline writes them)."""
    from engine.pipeline import outbox_row  # the pipeline owns the outbox row format

    points = outcome["points"]
    effect = EventRetracted(
        event=target.event.id,
        whole=target.whole,
        share=round(target.share, 6),
        points=points["cancelled"] + points["clawed_back"],
        unrecovered=points["unrecovered"],
        reason=str(outcome.get("reason", "")),
    )
    data = {"member": external_id, **msgspec.to_builtins(effect), "outcome": outcome}
    data.pop("type", None)
    await session.execute(
        insert(OutboxRow), [outbox_row(brand_id=brand.id, topic=EventRetracted.topic, data=data, now=now)]
    )
