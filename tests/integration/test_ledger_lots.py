"""Lots in the points ledger, on both backends: FEFO spends, no overdraft, pending points, cancellation, the pipeline."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from engine import point_views
from engine.earning import EarningRuleSpec
from engine.effects import PointsAwarded
from engine.errors import InsufficientPoints
from engine.events import Event
from engine.lots import cancel_event_points
from engine.orm import LedgerAllocationRow, LedgerRow
from engine.pipeline import Pipeline
from engine.points import PointsProcessor, balance, post_entry
from engine.rules_store import put_rule
from engine.settlement import release_due
from tests.integration.ledger_helpers import (
    count,
    earn,
    entries_of,
    figures,
    member,
    remaining_lots,
    replayed,
    spend,
    with_policy,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


async def test_spends_take_the_first_expiring_lots_first(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 12}})
    m = await member(db, b, "m", T0)
    late = await earn(db, b, m.id, 50, T0)  # expires 2027-11
    early = await earn(db, b, m.id, 30, T0 - timedelta(days=200))  # earned earlier: expires first
    undated = await earn(db, b, m.id, 40, T0, expires_at=None)
    result = await spend(db, b, m.id, 60, T0)
    assert result.allocations == [(early, 30), (late, 30)]
    assert await remaining_lots(db, b, m.id) == {late: 20, undated: 40}
    assert (await figures(db, b, m.id)).available == 60
    assert await figures(db, b, m.id) == await replayed(db, m.id)


async def test_no_overdraft_and_nothing_written_when_refused(db, brand):
    b = brand.brand
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    before = await count(db, LedgerRow, member_id=m.id)
    with pytest.raises(InsufficientPoints):
        await spend(db, b, m.id, 101, T0)
    with pytest.raises(InsufficientPoints):
        async with db.write() as session:
            await post_entry(
                session, brand_id=b.id, member_id=m.id, points=-150, source="adjustment", key="manual",
                reason="too much", occurred_at=T0, tz=b.tz, now=T0,
            )  # fmt: skip
    assert await count(db, LedgerRow, member_id=m.id) == before
    assert (await figures(db, b, m.id)).available == 100


async def test_the_database_refuses_a_negative_balance(db, brand):
    b = brand.brand
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 10, T0)
    with pytest.raises(IntegrityError, match="available_nonnegative"):
        async with db.write() as session:
            await session.execute(text("UPDATE point_balances SET available = -1 WHERE member_id = :m"), {"m": m.id})


async def test_negative_adjustment_spends_lots_and_balance_keeps_compatibility(db, brand):
    b = brand.brand
    m = await member(db, b, "m", T0)
    for points in (100, -30, 5):
        async with db.write() as session:
            await post_entry(
                session, brand_id=b.id, member_id=m.id, points=points, source="adjustment", key="manual",
                reason="fix", occurred_at=T0, tz=b.tz, now=T0,
            )  # fmt: skip
    async with db.read() as session:
        assert await balance(session, brand_id=b.id, member_id=m.id) == 75
        assert await balance(session, brand_id=b.id, member_id=m.id, now=T0) == 75
    assert (await entries_of(db, m.id, "spend"))[0].points == -30
    assert await figures(db, b, m.id) == await replayed(db, m.id)


async def _held_rule_event(db, brand, clock):
    await put_rule(
        db,
        brand_id=brand.id,
        spec=EarningRuleSpec(key="buy", event_type="purchase", points=80, holding_days=14),
        now=clock.now(),
    )
    pipeline = Pipeline(db, processors=[PointsProcessor()], clock=clock)
    event = Event(id="order-1", member="m", type="purchase", occurred_at=clock.now(), properties={})
    await pipeline.process(brand, [event])


async def test_held_points_are_pending_then_available_to_the_minute(db, brand, clock):
    b = brand.brand
    await _held_rule_event(db, b, clock)
    m = await member(db, b, "m", T0)
    release_at = T0 + timedelta(days=14)
    async with db.read() as session:
        view = await point_views.points_view(session, brand=b, member_id=m.id, now=T0)
        assert (view.available, view.pending) == (0, 80)
        assert [(p.points, p.available_at) for p in view.pending_lots] == [(80, release_at)]
        just_before = await point_views.points_view(
            session, brand=b, member_id=m.id, now=release_at - timedelta(minutes=1)
        )
        at_release = await point_views.points_view(session, brand=b, member_id=m.id, now=release_at)
    assert (just_before.available, at_release.available, at_release.pending) == (0, 80, 0)
    assert (await figures(db, b, m.id)).pending == 80  # lazily available: the job has not run yet
    with pytest.raises(InsufficientPoints):
        await spend(db, b, m.id, 10, release_at - timedelta(minutes=1))
    first = await release_due(db, now=release_at, brand_id=b.id)
    again = await release_due(db, now=release_at + timedelta(hours=1), brand_id=b.id)
    assert (first.released, again.released) == (80, 0)
    assert len(await entries_of(db, m.id, "release")) == 1
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.pending, stored.lifetime_earned) == (80, 0, 80)
    assert await figures(db, b, m.id) == await replayed(db, m.id)


async def test_spending_at_release_time_releases_first(db, brand, clock):
    b = brand.brand
    await _held_rule_event(db, b, clock)
    m = await member(db, b, "m", T0)
    result = await spend(db, b, m.id, 50, T0 + timedelta(days=14))
    assert result.points == 50
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.pending, stored.lifetime_spent) == (30, 0, 50)


async def test_reversed_event_cancels_pending_points_once(db, brand, clock):
    b = brand.brand
    await _held_rule_event(db, b, clock)
    m = await member(db, b, "m", T0)
    async with db.write() as session:
        outcome = await cancel_event_points(session, b, "order-1", T0 + timedelta(days=3))
    async with db.write() as session:
        repeat = await cancel_event_points(session, b, "order-1", T0 + timedelta(days=4))
    assert (outcome.cancelled, outcome.unrecovered, repeat.cancelled) == (80, 0, 0)
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.pending) == (0, 0)
    assert (
        await release_due(db, now=T0 + timedelta(days=15), brand_id=b.id)
        == type(await release_due(db, now=T0, brand_id=b.id))()
    )
    assert await figures(db, b, m.id) == await replayed(db, m.id)


async def test_cancelling_spent_points_takes_back_only_the_rest(db, brand):
    b = brand.brand
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0, event_key="order-9")
    await spend(db, b, m.id, 70, T0)
    async with db.write() as session:
        outcome = await cancel_event_points(session, b, "order-9", T0)
    assert (outcome.cancelled, outcome.unrecovered) == (30, 70)
    assert (await figures(db, b, m.id)).available == 0


class Corrections:
    """A processor that debits the ``amount`` property of ``correction`` events."""

    name = "corrections"

    async def process(self, uow):
        for ctx in uow.events:
            if ctx.event.type == "correction":
                ctx.emit(PointsAwarded(points=-ctx.event.properties["amount"], source="adjustment", key="correction"))
            if ctx.event.type == "bonus":
                ctx.emit(PointsAwarded(points=ctx.event.properties["amount"], source="adjustment", key="bonus"))

    async def after_commit(self, uow):
        return None


async def test_pipeline_batches_earnings_and_clamps_debits_in_order(db, brand, clock):
    b = brand.brand
    pipeline = Pipeline(db, processors=[Corrections()], clock=clock)
    at = clock.now()
    events = [
        Event(id="e1", member="a", type="bonus", occurred_at=at, properties={"amount": 40}),
        Event(id="e2", member="b", type="bonus", occurred_at=at, properties={"amount": 10}),
        Event(id="e3", member="a", type="correction", occurred_at=at, properties={"amount": 100}),
        Event(id="e4", member="a", type="bonus", occurred_at=at, properties={"amount": 5}),
    ]
    results = await pipeline.process(b, events)
    debit = results[2].effects[0]
    assert (debit.points, debit.capped) == (-40, True)  # only what there was, in event order
    a = await member(db, b, "a", at)
    bb = await member(db, b, "b", at)
    assert (await figures(db, b, a.id)).available == 5
    assert (await figures(db, b, bb.id)).available == 10
    assert await count(db, LedgerAllocationRow, brand_id=b.id) == 1
    assert await figures(db, b, a.id) == await replayed(db, a.id)
    duplicate = await pipeline.process(b, events[2:3])
    assert duplicate[0].duplicate and duplicate[0].effects[0].points == -40


async def test_adjustment_beyond_the_balance_answers_409_over_http(client, brand):
    await client.post("/v1/members", json={"external_id": "m"}, headers=brand.headers)
    ok = await client.post(
        "/v1/members/m/points/adjustments", json={"points": 20, "reason": "welcome"}, headers=brand.headers
    )
    assert ok.status_code == 201
    refused = await client.post(
        "/v1/members/m/points/adjustments", json={"points": -21, "reason": "too much"}, headers=brand.headers
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["type"].endswith("/insufficient-points") and problem["field"] == "points"
    assert "20 points available" in problem["detail"]
    after = await client.get("/v1/members/m/points", headers=brand.headers)
    assert after.json()["balance"] == 20 and len(after.json()["entries"]) == 1


async def test_pipeline_writes_lots_and_balances_in_one_statement_each(db, brand, clock):
    from sqlalchemy import event as sa_event

    b = brand.brand
    await put_rule(db, brand_id=b.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=5), now=clock.now())
    pipeline = Pipeline(db, processors=[PointsProcessor()], clock=clock)
    events = [
        Event(id=f"v{i}", member=f"m{i % 5}", type="visit", occurred_at=clock.now(), properties={}) for i in range(20)
    ]
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    sa_event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await pipeline.process(b, events)
    finally:
        sa_event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    # On PostgreSQL both are parts of the unit's one fused statement (engine.fused): still one of each.
    ledger_writes = [s for s in statements if "INSERT INTO LEDGER" in s.upper()]
    balance_writes = [s for s in statements if "point_balances" in s]
    assert (len(ledger_writes), len(balance_writes)) == (1, 1)
    for i in range(5):
        m = await member(db, b, f"m{i}", clock.now())
        assert (await figures(db, b, m.id)).available == 20


async def test_history_leaves_out_release_bookkeeping(db, brand, clock):
    from engine.points import all_entries, history

    b = brand.brand
    await _held_rule_event(db, b, clock)
    m = await member(db, b, "m", T0)
    await release_due(db, now=T0 + timedelta(days=14), brand_id=b.id)
    async with db.read() as session:
        page, _ = await history(session, brand_id=b.id, member_id=m.id, limit=10, before=None)
        export = await all_entries(session, brand_id=b.id, member_id=m.id)
    assert [(e.kind, e.points) for e in page] == [("earn", 80)]
    assert [(e.kind, e.points) for e in export] == [("earn", 80), ("release", 0)]
    assert page[0].expires_at is None
