"""The rows a unit of work writes, built from its events' effects (pure: no I/O).

:mod:`engine.pipeline` writes them, with per-table statements or, on PostgreSQL, one fused statement
(:mod:`engine.fused`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from engine import lots
from engine.effects import Notification, PointsAwarded
from engine.expiry import expires_at as expiry_date
from engine.expiry import policy_of
from engine.ledger import EARN
from engine.periods import local_day
from engine.topics import outbox_row

if TYPE_CHECKING:
    from datetime import date, datetime

    from engine.ids import MemberId
    from engine.pipeline import UnitOfWork

_EFFECTS_ENCODER = msgspec.json.Encoder()
_NO_HOLD = timedelta(0)


def unit_rows(uow: UnitOfWork) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The unit's outbox rows and event-log rows (each event with its effects)."""
    outbox: list[dict[str, Any]] = []
    log_rows: list[dict[str, Any]] = []
    brand_id = uow.brand.id
    for ctx in uow.events:
        event = ctx.event
        for effect in ctx.effects:
            if isinstance(effect, Notification):
                outbox.append(
                    outbox_row(
                        brand_id=brand_id,
                        topic=effect.topic,
                        data={"member": event.member, "event": event.id, **effect.data},
                        now=uow.now,
                    )
                )
        log_rows.append(
            {
                "brand_id": brand_id,
                "event_key": event.id,
                "member_id": ctx.member_id,
                "type": event.type,
                "occurred_at": event.occurred_at,
                "received_at": uow.now,
                "properties": event.properties,
                "result": _EFFECTS_ENCODER.encode(ctx.effects),
            }
        )
    return outbox, log_rows


@dataclass(slots=True)
class Earnings:
    """A unit's positive awards as ledger lots and per-member balance totals."""

    rule: Any
    """The brand's expiry rule."""
    holding: dict[tuple[int, str], timedelta]
    debited: set[MemberId]
    """Members with a negative award in the unit (applied one by one, in event order)."""
    rows: list[dict[str, Any]] = field(default_factory=list)
    """Ledger lots of the other members' positive awards."""
    totals: dict[MemberId, dict[str, Any]] = field(default_factory=dict)
    """Per member: the balance upsert row."""


def earnings_of(uow: UnitOfWork) -> Earnings:
    """The unit's positive awards as lots and per-member balance totals (members with a debit set apart)."""
    brand = uow.brand
    holding: dict[tuple[int, str], timedelta] = uow.stash.get(lots.HOLDING_STASH, {})
    debited = {
        ctx.member_id for ctx in uow.events for e in ctx.effects if isinstance(e, PointsAwarded) and e.points < 0
    }
    found = Earnings(rule=policy_of(brand.settings).expiry, holding=holding, debited=debited)
    tz, now, brand_id = uow.tz, uow.now, brand.id
    for ctx in uow.events:
        if ctx.member_id in debited:
            continue
        occurred_at = ctx.event.occurred_at
        day: date | None = None  # the event's local day and its lots' expiry, computed once for all its awards
        expires: datetime | None = None
        for effect in ctx.effects:
            if not isinstance(effect, PointsAwarded) or effect.points <= 0:
                continue
            if day is None:
                day, expires = local_day(occurred_at, tz), expiry_date(found.rule, occurred_at, tz)
            hold = holding.get((ctx.index, effect.key), _NO_HOLD) if effect.source == "rule" else _NO_HOLD
            available_at = occurred_at + hold if hold > _NO_HOLD else now  # as lots.lot_row
            row = lots.entry_row(
                brand_id=brand_id, member_id=ctx.member_id, points=effect.points, kind=EARN, source=effect.source,
                key=effect.key, occurred_at=occurred_at, tz=tz, now=now, event_key=ctx.event.id,
                available_at=available_at, expires_at=expires, day=day,
            )  # fmt: skip
            found.rows.append(row)
            total = found.totals.get(ctx.member_id)
            if total is None:
                total = found.totals[ctx.member_id] = {
                    "brand_id": brand_id, "member_id": ctx.member_id, "available": 0, "pending": 0,
                    "lifetime_earned": 0, "last_activity_at": occurred_at, "updated_at": now,
                }  # fmt: skip
            total["pending" if available_at > now else "available"] += effect.points
            total["lifetime_earned"] += effect.points
            if occurred_at > total["last_activity_at"]:
                total["last_activity_at"] = occurred_at
    return found
