"""Property: any sequence of earn, spend, redeem, cancel and expiry keeps the balance row equal to its lots.

For every random sequence, on both backends: available = the remainders of the lots counted available,
pending = those of the lots still held, available >= 0, the ledger replays to the stored row, and after
the jobs ran the row equals what reads compute from the lots at that instant.
"""

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import lots, point_views
from engine.clock import FrozenClock
from engine.db import Database, create_engine
from engine.errors import InsufficientPoints
from engine.settlement import expire_due, release_due
from rewards import service
from rewards.models import RewardSpec
from tests.helpers import make_brand
from tests.integration.ledger_helpers import figures, member, replayed, with_policy

T0 = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 120), st.sampled_from([0, 0, 3])),
        st.tuples(st.just("spend"), st.integers(1, 150), st.just(0)),
        st.tuples(st.just("redeem"), st.just(25), st.just(0)),
        st.tuples(st.just("cancel_redemption"), st.integers(0, 5), st.just(0)),
        st.tuples(st.just("cancel_event"), st.integers(0, 8), st.just(0)),
        st.tuples(st.just("advance"), st.integers(1, 20), st.just(0)),
        st.tuples(st.just("jobs"), st.just(0), st.just(0)),
    ),
    max_size=14,
)


async def _check(db, brand, member_id, now):
    stored = await figures(db, brand, member_id)
    assert stored.available >= 0 and stored.pending >= 0
    assert stored == await replayed(db, member_id)
    async with db.read() as session:
        open_lots = await lots.open_lots(session, brand_id=brand.id, member_id=member_id)
    assert stored.available == sum(x.remaining for x in open_lots if not x.counted_pending())
    assert stored.pending == sum(x.remaining for x in open_lots if x.counted_pending())


async def _apply(db, brand, m, op, state):
    kind, amount, extra = op
    now = state["now"]
    if kind == "earn":
        key = f"ev{len(state['events'])}"
        state["events"].append(key)
        async with db.write() as session:
            await lots.earn(
                session, brand, member_id=m.id, points=amount, source="rule", key="p", occurred_at=now, now=now,
                event_key=key, holding=timedelta(days=extra),
            )  # fmt: skip
    elif kind == "spend":
        try:
            async with db.write() as session:
                await lots.spend(session, brand, member_id=m.id, points=amount, source="adjustment", key="m", now=now)
        except InsufficientPoints:
            pass
    elif kind == "redeem":
        try:
            async with db.write() as session:
                outcome = await service.redeem(
                    session, brand, member=m, reward_key="r", idempotency_key=f"k{len(state['redemptions'])}", now=now
                )
            state["redemptions"].append(outcome.redemption.id)
        except InsufficientPoints:
            pass
    elif kind == "cancel_redemption" and amount < len(state["redemptions"]):
        redemption = state["redemptions"].pop(amount)
        async with db.write() as session:
            await service.cancel(session, brand, redemption_id=redemption, now=now)
    elif kind == "cancel_event" and amount < len(state["events"]):
        async with db.write() as session:
            await lots.cancel_event_points(session, brand, state["events"][amount], now)
    elif kind == "advance":
        state["now"] = now + timedelta(days=amount)
    elif kind == "jobs":
        await release_due(db, now=now)
        await expire_due(db, now=now)


async def _scenario(url: str, ops: list[tuple[str, int, int]]) -> None:
    db = Database(create_engine(url))
    try:
        keys = await make_brand(db, FrozenClock(T0))
        brand = await with_policy(db, keys.brand, {"expiry": {"kind": "rolling", "months": 1}, "notice_days": [7]})
        plain = {"key": "r", "name": {"en": "R"}, "cost": 25, "type": "product"}
        async with db.write() as session:
            await service.put_reward(session, brand_id=brand.id, spec=msgspec.convert(plain, RewardSpec), now=T0)
        m = await member(db, brand, "m", T0)
        state = {"now": T0, "events": [], "redemptions": []}
        for op in ops:
            await _apply(db, brand, m, op, state)
            await _check(db, brand, m.id, state["now"])
        await release_due(db, now=state["now"])
        await expire_due(db, now=state["now"])
        await _check(db, brand, m.id, state["now"])
        async with db.read() as session:
            exact = await point_views.available(session, brand_id=brand.id, member_id=m.id, now=state["now"])
        assert (await figures(db, brand, m.id)).available == exact
    finally:
        await db.dispose()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_balance_always_equals_its_lots_and_replays(database_url, ops):
    asyncio.run(_scenario(database_url, ops))
