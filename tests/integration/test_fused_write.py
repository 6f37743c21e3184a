"""PostgreSQL's one-statement write of a unit (``engine.fused``): the rows stored are the rows given."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import fused, lots
from engine import members as members_repo
from engine.orm import EventRow, LedgerRow, OutboxRow, PointBalanceRow
from engine.topics import outbox_row


@pytest.fixture
def postgres_only(backend: str) -> None:
    if not backend.startswith("postgres"):
        pytest.skip("the fused write is PostgreSQL's")


def _columns(row: object, names: list[str]) -> dict[str, object]:
    return {name: getattr(row, name) for name in names}


async def test_the_unit_rows_are_stored_as_given(db, brand, clock, postgres_only):
    now = clock.now()
    b = brand.brand
    async with db.write() as session:
        found = await members_repo.ensure_and_lock(session, db=db, brand_id=b.id, external_ids=["f-1", "f-2"], now=now)
    one, two = found["f-1"].id, found["f-2"].id
    earlier = now - timedelta(hours=3)
    ledger = [
        lots.lot_row(b, member_id=one, points=10, source="rule", key="visit", occurred_at=earlier, now=now,
                     event_key="e-1"),
        # held: available a week after it happened, so not at the unit's time
        lots.lot_row(b, member_id=two, points=25, source="rule", key="purchase", occurred_at=earlier, now=now,
                     event_key="e-2", holding=timedelta(days=7)),
    ]  # fmt: skip
    assert ledger[0]["available_at"] == now and ledger[1]["available_at"] == earlier + timedelta(days=7)
    balances = [
        {"brand_id": b.id, "member_id": two, "available": 0, "pending": 25, "lifetime_earned": 25,
         "last_activity_at": earlier, "updated_at": now},
        {"brand_id": b.id, "member_id": one, "available": 10, "pending": 0, "lifetime_earned": 10,
         "last_activity_at": earlier, "updated_at": now},
    ]  # fmt: skip
    outbox = [outbox_row(brand_id=b.id, topic="points.earned", data={"member": "f-1", "points": 10}, now=now)]
    events = [
        {"brand_id": b.id, "event_key": f"e-{n}", "member_id": member_id, "type": "visit", "occurred_at": earlier,
         "received_at": now, "properties": {"store": "s-1", "n": n}, "result": b"[]"}
        for n, member_id in ((1, one), (2, two))
    ]  # fmt: skip
    async with db.write() as session:
        await fused.write_unit(
            session, brand_id=b.id, now=now, ledger=ledger, balances=balances, outbox=outbox, events=events
        )
    async with db.read() as session:
        stored = (
            await session.scalars(select(LedgerRow).where(LedgerRow.brand_id == b.id).order_by(LedgerRow.id))
        ).all()
        assert [_columns(row, list(ledger[0])) for row in stored] == ledger
        held = {
            row.member_id: _columns(row, list(balances[0]))
            for row in await session.scalars(select(PointBalanceRow).where(PointBalanceRow.brand_id == b.id))
        }
        assert held == {row["member_id"]: row for row in balances}
        (message,) = (await session.scalars(select(OutboxRow).where(OutboxRow.brand_id == b.id))).all()
        names = ["brand_id", "message_id", "topic", "payload", "created_at", "next_attempt_at", "attempts"]
        assert _columns(message, names) == {name: outbox[0][name] for name in names}
        logged = (await session.scalars(select(EventRow).where(EventRow.brand_id == b.id).order_by(EventRow.id))).all()
        assert [_columns(row, list(events[0])) for row in logged] == events


async def test_a_row_of_another_time_is_refused_and_nothing_is_written(db, brand, clock, postgres_only):
    now = clock.now()
    b = brand.brand
    async with db.write() as session:
        found = await members_repo.ensure_and_lock(session, db=db, brand_id=b.id, external_ids=["f-3"], now=now)
    row = {"brand_id": b.id, "event_key": "e-3", "member_id": found["f-3"].id, "type": "visit", "occurred_at": now,
           "received_at": now - timedelta(seconds=1), "properties": {}, "result": b"[]"}  # fmt: skip
    with pytest.raises(ValueError, match="received_at"):
        async with db.write() as session:
            await fused.write_unit(session, brand_id=b.id, now=now, ledger=[], balances=[], outbox=[], events=[row])
    with pytest.raises(ValueError, match="brand_id"):
        async with db.write() as session:
            await fused.write_unit(
                session, brand_id=b.id, now=now, ledger=[], balances=[], outbox=[],
                events=[{**row, "received_at": now, "brand_id": b.id + 1}],
            )  # fmt: skip
    async with db.read() as session:
        assert (await session.scalars(select(EventRow.id).where(EventRow.event_key == "e-3"))).all() == []
