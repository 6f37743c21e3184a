"""PostgreSQL's one-statement write of a unit (``engine.fused``): the rows stored are the rows given."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import fused, lots, member_locks
from engine.orm import EventRow, LedgerRow, OutboxRow, PointBalanceRow
from engine.topics import outbox_row


@pytest.fixture
def postgres_only(backend: str) -> None:
    if not backend.startswith("postgres"):
        pytest.skip("the fused write is PostgreSQL's")


async def _members(db, brand_id: int, now, *external_ids: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The ids of the brand's members ``external_ids``, created as a unit creates them."""
    async with db.write() as session:
        found = await member_locks.ensure_and_lock(
            session, db=db, brand_id=brand_id, external_ids=list(external_ids), now=now
        )
    return [found[name].id for name in external_ids]


def _columns(row: object, names: list[str]) -> dict[str, object]:
    return {name: getattr(row, name) for name in names}


async def test_the_unit_rows_are_stored_as_given(db, brand, clock, postgres_only):
    now = clock.now()
    b = brand.brand
    one, two = await _members(db, b.id, now, "f-1", "f-2")
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
    (member,) = await _members(db, b.id, now, "f-3")
    row = {"brand_id": b.id, "event_key": "e-3", "member_id": member, "type": "visit", "occurred_at": now,
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


async def test_a_steps_upsert_rides_in_the_unit_statement_and_updates_on_conflict(db, brand, clock, postgres_only):
    from challenges.orm import MemberStateRow
    from challenges.states import STATES_UPSERT

    now = clock.now()
    b = brand.brand
    one, two = await _members(db, b.id, now, "u-1", "u-2")

    def rows(states: dict[int, str], at):  # type: ignore[no-untyped-def]
        return [{"brand_id": b.id, "member_id": m, "state": s, "updated_at": at} for m, s in states.items()]

    await _unit(db, b.id, now, [(STATES_UPSERT, rows({one: '{"a": 1}', two: '{"b": 2}'}, now))])
    later = now + timedelta(minutes=5)
    await _unit(db, b.id, later, [(STATES_UPSERT, rows({two: '{"b": 3}'}, later))])  # a conflict: replaced
    async with db.read() as session:
        stored = (await session.scalars(select(MemberStateRow).where(MemberStateRow.brand_id == b.id))).all()
    assert {(r.member_id, r.state, r.updated_at) for r in stored} == {(one, '{"a": 1}', now), (two, '{"b": 3}', later)}
    off_time = [(STATES_UPSERT, rows({one: "{}"}, later))]
    with pytest.raises(ValueError, match="not the unit's"):  # a time not the unit's cannot be sent once
        await _unit(db, b.id, now, off_time)
    twice = [(STATES_UPSERT, rows({one: "{}"}, now)), (STATES_UPSERT, rows({two: "{}"}, now))]
    with pytest.raises(ValueError, match="twice"):
        await _unit(db, b.id, now, twice)


async def _unit(db, brand_id: int, now, upserts) -> None:  # type: ignore[no-untyped-def]
    """A unit of work that writes only the steps' upserts."""
    async with db.write() as session:
        await fused.write_unit(
            session, brand_id=brand_id, now=now, ledger=[], balances=[], outbox=[], events=[], upserts=upserts
        )


class _StateAndPoints:
    """A step that gives the ``amount`` of each event (negative: a debit) and writes the member a state."""

    name = "state-and-points"

    async def process(self, uow):  # type: ignore[no-untyped-def]
        from challenges.states import save_states_with_unit
        from engine.effects import PointsAwarded

        for ctx in uow.events:
            ctx.emit(PointsAwarded(points=ctx.event.properties["amount"], source="adjustment", key=ctx.event.type))
        await save_states_with_unit(uow, {ctx.member_id: f'{{"seen": "{ctx.event.id}"}}' for ctx in uow.events})

    async def after_commit(self, uow):  # type: ignore[no-untyped-def]
        return None


async def test_a_steps_rows_are_written_whether_the_unit_is_one_statement_or_not(db, brand, clock):
    """A debit takes the per-table path, where the step's rows are written on their own; both store them."""
    from challenges.orm import MemberStateRow
    from engine.events import Event
    from engine.pipeline import Pipeline

    b = brand.brand
    pipeline = Pipeline(db, processors=[_StateAndPoints()], clock=clock)
    at = clock.now()

    async def states() -> list[str]:
        async with db.read() as session:
            found = await session.scalars(select(MemberStateRow.state).where(MemberStateRow.brand_id == b.id))
            return list(found.all())

    earned = Event(id="s1", member="sa", type="bonus", occurred_at=at, properties={"amount": 9})
    assert (await pipeline.process(b, [earned]))[0].effects
    assert await states() == ['{"seen": "s1"}']  # on PostgreSQL, in the unit's one statement
    debit = Event(id="s2", member="sa", type="debit", occurred_at=at, properties={"amount": -4})
    assert (await pipeline.process(b, [debit]))[0].effects[0].points == -4
    assert await states() == ['{"seen": "s2"}']  # the per-table path: the step's rows on their own
