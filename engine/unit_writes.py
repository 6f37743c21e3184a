"""What a unit of work's effects imply, written: ledger lots and balances, outbox rows, the event log.

:mod:`engine.pipeline` calls :func:`write_effects` once its steps ran (:func:`write_apart` when a velocity
limit held every event of the unit): on PostgreSQL the common case is one statement (:mod:`engine.fused`),
the rest per table.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import insert

from engine import balances, fused, lots, publishing
from engine.db import chunks
from engine.effects import PointsAwarded
from engine.expiry import Inactivity, inactivity_cutoff
from engine.orm import EventRow, LedgerRow, OutboxRow
from engine.unit_rows import Earnings, earnings_of, unit_rows

if TYPE_CHECKING:
    from sqlalchemy import Table

    from engine.pipeline import EventContext, UnitOfWork

# Core tables: executemany inserts skip the ORM's per-row bookkeeping on the hot path.
_EVENT_LOG = cast("Table", EventRow.__table__)
_LEDGER = cast("Table", LedgerRow.__table__)
_OUTBOX = cast("Table", OutboxRow.__table__)
_NO_HOLD = timedelta(0)


async def write_effects(uow: UnitOfWork) -> None:
    """Turn effects into rows: ledger lots and balances, outbox rows, and the event log with results.

    On PostgreSQL the common case (earnings only) is one statement (:mod:`engine.fused`). The outbox also
    gets the per-event topics an endpoint of the brand listens to (:func:`engine.publishing.derived_rows`).
    """
    earnings = earnings_of(uow)
    if uow.db.is_postgres and not earnings.debited and not (earnings.rows and isinstance(earnings.rule, Inactivity)):
        outbox, log_rows = unit_rows(uow)
        outbox.extend(await publishing.derived_rows(uow))
        await fused.write_unit(
            uow.session, brand_id=uow.brand.id, now=uow.now, ledger=earnings.rows,
            balances=list(earnings.totals.values()), outbox=outbox, events=log_rows,
            upserts=[(upsert, rows) for upsert, rows, _ in uow._with_unit],
        )  # fmt: skip
        return
    await write_apart(uow)
    await _write_points(uow, earnings)  # may rewrite a capped debit's effect: rows are built after it
    outbox, log_rows = unit_rows(uow)
    outbox.extend(await publishing.derived_rows(uow))
    session = uow.session
    await session.execute(insert(_EVENT_LOG), log_rows)
    if outbox:
        await session.execute(insert(_OUTBOX), outbox)


async def write_apart(uow: UnitOfWork) -> None:
    """The steps' rows meant for the unit's one statement, where it is not written in one: each on its own."""
    for _upsert, _rows, otherwise in uow._with_unit:
        await otherwise()


async def _write_points(uow: UnitOfWork, earnings: Earnings) -> None:
    """Earnings become lots, with one balance upsert per member for the whole unit of work.

    Members with a negative award (a correction) in the unit take the slow path instead: their awards are
    applied one by one, in event order, and a debit beyond what they have takes what there is (the
    effect is rewritten with the amount taken and ``capped``), so a batch never fails on it.
    """
    brand, rule, totals, now, tz = uow.brand, earnings.rule, earnings.totals, uow.now, uow.tz
    if earnings.rows:
        if isinstance(rule, Inactivity):
            # Points that lapsed for inactivity expire before new activity could revive them.
            for chunk in chunks(sorted(totals)):
                cutoff = inactivity_cutoff(rule, now, tz)
                for member_id in await balances.inactive_since(uow.session, member_ids=chunk, cutoff=cutoff):
                    await lots.settle_member(uow.session, brand, member_id=member_id, now=now)
        await uow.session.execute(insert(_LEDGER), earnings.rows)
        await balances.add_earnings(uow.session, list(totals.values()))
    for member_id in sorted(earnings.debited):
        for ctx in uow.events:
            if ctx.member_id == member_id:
                await _apply_one_by_one(uow, ctx, earnings.holding)


async def _apply_one_by_one(uow: UnitOfWork, ctx: EventContext, holding: dict[tuple[int, str], timedelta]) -> None:
    for index, effect in enumerate(ctx.effects):
        if not isinstance(effect, PointsAwarded) or effect.points == 0:
            continue
        common: dict[str, Any] = {
            "member_id": ctx.member_id,
            "source": effect.source,
            "key": effect.key,
            "occurred_at": ctx.event.occurred_at,
            "now": uow.now,
            "event_key": ctx.event.id,
        }
        if effect.points > 0:
            hold = holding.get((ctx.index, effect.key), _NO_HOLD) if effect.source == "rule" else _NO_HOLD
            await lots.earn(uow.session, uow.brand, points=effect.points, holding=hold, **common)
            continue
        taken = await lots.spend(uow.session, uow.brand, points=-effect.points, clamp=True, **common)
        if taken.points != -effect.points:
            ctx.effects[index] = msgspec.structs.replace(effect, points=-taken.points, capped=True)
