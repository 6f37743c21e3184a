"""Per-member velocity limits (anti-fraud): events beyond a limit are held for review, their effects not applied.

The program document's ``limits:`` section lists them; each counts one member's activity in a rolling
window (``per: hour`` = the last 60 minutes, ``per: day`` = the last 24 hours, by receipt time)::

    limits:
      - {key: visits-per-hour, event_type: visit, max_events: 5, per: hour}
      - {key: points-per-day, max_points: 500, per: day}     # points from earning rules

:class:`VelocityStep` runs in the pipeline right after the earning rules (so it knows each event's points)
and before every other domain. It counts the unit's members in **one SQL statement** (the event log and the
ledger, conditional sums per limit), walks the events in order, and takes those that would exceed a limit
out of the unit: they are stored in ``held_events`` with their payload (``pending_review``), and the
response says ``"held": true``. The review queue (:mod:`engine.review`) applies an approved event once,
through the pipeline, with the original event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import msgspec
from sqlalchemy import BigInteger, String, and_, case, func, insert, literal, select, union_all

from engine import tenants
from engine.cache import BrandCache
from engine.db import one_of
from engine.effects import PointsAwarded
from engine.errors import DefinitionError
from engine.orm import BrandRow, EventRow, LedgerRow
from engine.pipeline import BYPASS_STASH, HELD_STASH
from engine.records import HeldEventRow

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.pipeline import EventContext, UnitOfWork

SETTINGS_KEY = "limits"
PENDING = "pending_review"
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
_HELD = cast("Table", HeldEventRow.__table__)


class VelocityLimit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """At most ``max_events`` events (of ``event_type``, or of any type) or ``max_points`` points per window."""

    key: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]
    per: Literal["hour", "day"]
    event_type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    max_events: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    max_points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] | None = None

    def describe(self) -> str:
        """A short reason, e.g. ``visits-per-hour: at most 5 visit events per hour``."""
        if self.max_points is not None:
            return f"{self.key}: at most {self.max_points} points per {self.per}"
        what = f"{self.event_type} events" if self.event_type else "events"
        return f"{self.key}: at most {self.max_events} {what} per {self.per}"


def parse_limits(data: Any, *, path: str = "$.limits") -> tuple[VelocityLimit, ...]:
    """Validate the ``limits`` section.

    Raises:
        DefinitionError: not a list of limits, a bad field (by path), a repeated key, or not exactly one of
            ``max_events`` and ``max_points``.
    """
    try:
        limits = msgspec.convert(data or [], list[VelocityLimit])
    except msgspec.ValidationError as exc:
        raise DefinitionError(f"invalid limit: {exc}", field=path) from exc
    seen: set[str] = set()
    for index, limit in enumerate(limits):
        if (limit.max_events is None) == (limit.max_points is None):
            raise DefinitionError("give exactly one of max_events and max_points", field=f"{path}[{index}]")
        if limit.max_points is not None and limit.event_type is not None:
            raise DefinitionError(
                "a points limit counts every rule's points; drop event_type", field=f"{path}[{index}]"
            )
        if limit.key in seen:
            raise DefinitionError(f"the limit key {limit.key!r} appears twice", field=f"{path}[{index}].key")
        seen.add(limit.key)
    return tuple(limits)


def limits_of(settings: dict[str, Any]) -> tuple[VelocityLimit, ...]:
    """The limits stored in a brand's settings (validated when applied)."""
    return tuple(msgspec.convert(settings.get(SETTINGS_KEY) or [], list[VelocityLimit]))


async def apply_limits(session: AsyncSession, *, brand_id: BrandId, limits: Sequence[VelocityLimit]) -> list[str]:
    """Store the brand's limits (its settings) and bump its config version; returns what changed."""
    row = await session.get(BrandRow, brand_id, with_for_update=True)
    if row is None:
        return []
    before = limits_of(dict(row.settings or {}))
    if tuple(before) == tuple(limits):
        return []
    row.settings = {**(row.settings or {}), SETTINGS_KEY: msgspec.to_builtins(list(limits))}
    await tenants.bump_config_version(session, brand_id)
    old = {limit.key for limit in before}
    new = {limit.key for limit in limits}
    changes = [f"limit {k} added" for k in sorted(new - old)] + [f"limit {k} removed" for k in sorted(old - new)]
    changes += [f"limit {limit.key} changed" for limit in limits if limit.key in old and limit not in before]
    return changes or ["limits reordered"]


async def export_limits(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's limits as the document writes them."""
    settings = await session.scalar(select(BrandRow.settings).where(BrandRow.id == brand_id))
    return [msgspec.to_builtins(limit) for limit in limits_of(dict(settings or {}))]


def rule_points(ctx: EventContext) -> int:
    """The points the event's earning rules award (what points limits count)."""
    return sum(e.points for e in ctx.effects if isinstance(e, PointsAwarded) and e.source == "rule" and e.points > 0)


def _window_sum(limit: VelocityLimit, index: int, now: datetime, *, points: bool) -> Any:
    label = f"l{index}"
    since = now - WINDOWS[limit.per]
    if points != (limit.max_points is not None):
        return literal(0).label(label)
    if points:
        return func.coalesce(func.sum(case((LedgerRow.created_at >= since, LedgerRow.points), else_=0)), 0).label(label)
    matches = EventRow.received_at >= since
    if limit.event_type is not None:
        matches = and_(matches, EventRow.type == limit.event_type)
    return func.coalesce(func.sum(case((matches, 1), else_=0)), 0).label(label)


async def counted(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    member_ids: Sequence[MemberId],
    limits: Sequence[VelocityLimit],
    now: datetime,
) -> dict[int, list[int]]:
    """Each member's current count per limit (events or points in its window), in one statement."""
    oldest = now - max(WINDOWS[limit.per] for limit in limits)
    events = (
        select(EventRow.member_id, *[_window_sum(lim, i, now, points=False) for i, lim in enumerate(limits)])
        .where(
            EventRow.brand_id == brand_id,
            one_of(session, EventRow.member_id, list(member_ids), BigInteger()),
            EventRow.received_at >= oldest,
        )
        .group_by(EventRow.member_id)
    )
    earned = (
        select(LedgerRow.member_id, *[_window_sum(lim, i, now, points=True) for i, lim in enumerate(limits)])
        .where(
            LedgerRow.brand_id == brand_id,
            one_of(session, LedgerRow.member_id, list(member_ids), BigInteger()),
            LedgerRow.kind == "earn",
            LedgerRow.source == "rule",
            LedgerRow.created_at >= oldest,
        )
        .group_by(LedgerRow.member_id)
    )
    totals: dict[int, list[int]] = {}
    for row in await session.execute(union_all(events, earned)):
        current = totals.setdefault(int(row[0]), [0] * len(limits))
        for i in range(len(limits)):
            current[i] += int(row[i + 1] or 0)
    return totals


def screen(
    contexts: Sequence[EventContext], limits: Sequence[VelocityLimit], totals: dict[int, list[int]]
) -> dict[int, str]:
    """Which events (by request index) exceed a limit, walking them in order; the value is the reason."""
    held: dict[int, str] = {}
    for ctx in contexts:
        current = totals.setdefault(int(ctx.member_id), [0] * len(limits))
        points = rule_points(ctx)
        adds = [
            (points if lim.max_points is not None else int(lim.event_type in (None, ctx.event.type))) for lim in limits
        ]
        over = next(
            (
                lim
                for lim, now_at, add in zip(limits, current, adds, strict=True)
                if add and now_at + add > (lim.max_points or lim.max_events or 0)
            ),
            None,
        )
        if over is not None:
            held[ctx.index] = over.describe()
            continue
        for i, add in enumerate(adds):
            current[i] += add
    return held


def held_row(uow: UnitOfWork, ctx: EventContext, reason: str) -> dict[str, Any]:
    """The ``held_events`` row of an event held in this unit of work."""
    event = ctx.event
    return {
        "brand_id": uow.brand.id,
        "member_id": ctx.member_id,
        "event_key": event.id,
        "type": event.type,
        "payload": {
            "id": event.id,
            "member": event.member,
            "type": event.type,
            "occurred_at": event.occurred_at.isoformat(),
            "properties": event.properties,
        },
        "reason": reason[:200],
        "status": PENDING,
        "held_at": uow.now,
        "decided_at": None,
        "decided_by": "",
    }


class VelocityStep:
    """The pipeline step that holds events beyond the brand's velocity limits (see the module docstring)."""

    name = "velocity"

    def __init__(self) -> None:
        self.cache: BrandCache[tuple[VelocityLimit, ...]] = BrandCache()

    async def _limits(self, uow: UnitOfWork) -> tuple[VelocityLimit, ...]:
        async def load() -> tuple[VelocityLimit, ...]:
            settings = await uow.session.scalar(select(BrandRow.settings).where(BrandRow.id == uow.brand.id))
            return limits_of(dict(settings or {}))

        return await self.cache.get(uow.brand.id, await uow.config_version(), load)

    async def process(self, uow: UnitOfWork) -> None:
        """Hold the events that would exceed a limit: store them, and take them out of the unit of work."""
        if uow.stash.get(BYPASS_STASH):
            return
        limits = await self._limits(uow)
        if not limits or not uow.events:
            return
        already = await held_keys(uow.session, brand_id=uow.brand.id, keys=[c.event.id for c in uow.events])
        members = sorted({c.member_id for c in uow.events})
        totals = await counted(uow.session, brand_id=uow.brand.id, member_ids=members, limits=limits, now=uow.now)
        fresh = [c for c in uow.events if c.event.id not in already]
        held = screen(fresh, limits, totals)
        held_now = {c.index: held[c.index] for c in fresh if c.index in held}
        rows = [held_row(uow, c, held_now[c.index]) for c in fresh if c.index in held_now]
        if rows:
            await uow.session.execute(insert(_HELD), rows)
        marked: dict[int, bool] = uow.stash.setdefault(HELD_STASH, {})
        marked.update(dict.fromkeys(held_now, False))
        marked.update({c.index: True for c in uow.events if c.event.id in already})
        uow.events[:] = [c for c in uow.events if c.index not in marked]

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived."""


async def held_keys(session: AsyncSession, *, brand_id: BrandId, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are already held (a resent held event is answered as held, not held twice)."""
    rows = await session.scalars(
        select(HeldEventRow.event_key).where(
            HeldEventRow.brand_id == brand_id, one_of(session, HeldEventRow.event_key, list(keys), String())
        )
    )
    return set(rows)
