"""Expiry of lots, on both backends: only the remainder expires, exactly once, across DST, with notices."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from engine import point_views
from engine.db import Database, create_engine
from engine.settlement import expire_due
from tests.integration.ledger_helpers import (
    earn,
    entries_of,
    figures,
    member,
    remaining_lots,
    replayed,
    spend,
    topics,
    with_policy,
)

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def test_partly_spent_lot_expires_only_its_remainder_once(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 6}, "notice_days": []})
    m = await member(db, b, "m", T0)
    lot = await earn(db, b, m.id, 100, T0)
    await spend(db, b, m.id, 35, T0 + timedelta(days=10))
    expiry = datetime(2026, 7, 15, 8, 0, tzinfo=UTC)  # same local time (10:00) six months on: CET -> CEST
    assert (await entries_of(db, m.id, "earn"))[0].expires_at == expiry
    before = await expire_due(db, now=expiry - timedelta(seconds=1), brand_id=b.id)
    first = await expire_due(db, now=expiry, brand_id=b.id)
    second = await expire_due(db, now=expiry + timedelta(days=1), brand_id=b.id)
    assert (before.expired, first.expired, second.expired) == (0, 65, 0)
    [entry] = await entries_of(db, m.id, "expire")
    assert (entry.points, entry.lot_id) == (-65, lot)
    assert await remaining_lots(db, b, m.id) == {}
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_earned, stored.lifetime_spent) == (0, 100, 35)
    assert stored == await replayed(db, m.id)
    expired = [data for topic, data in await topics(db, b) if topic == "points.expired"]
    assert [(d["member"], d["points"]) for d in expired] == [("m", 65)]


async def test_reads_treat_a_passed_date_as_expired_before_the_job_runs(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 1}, "notice_days": []})
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 40, T0)
    await earn(db, b, m.id, 10, T0 + timedelta(days=20))
    expiry = datetime(2026, 2, 15, 9, 0, tzinfo=UTC)
    async with db.read() as session:
        view = await point_views.points_view(session, brand=b, member_id=m.id, now=expiry - timedelta(minutes=1))
        after = await point_views.points_view(session, brand=b, member_id=m.id, now=expiry)
    assert view.available == 50
    assert [(e.points, e.expires_at) for e in view.expiring] == [
        (40, expiry),
        (10, datetime(2026, 3, 4, 9, 0, tzinfo=UTC)),
    ]
    assert after.available == 10
    result = await spend(db, b, m.id, 10, expiry)  # the spend settles the expired lot first
    assert result.points == 10
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_spent) == (0, 10)
    assert [e.points for e in await entries_of(db, m.id, "expire")] == [-40]


@pytest.mark.parametrize(
    ("earned", "expires"),
    [
        # Rome: the last day of March ends at 00:00 CEST on April 1st, i.e. 22:00 UTC (DST began March 29th).
        (datetime(2026, 2, 10, 12, 0, tzinfo=UTC), datetime(2026, 3, 31, 22, 0, tzinfo=UTC)),
        # October ends at 00:00 CET on November 1st, i.e. 23:00 UTC (DST ended October 25th).
        (datetime(2026, 9, 10, 12, 0, tzinfo=UTC), datetime(2026, 10, 31, 23, 0, tzinfo=UTC)),
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_calendar_expiry_at_local_month_end_across_dst(db, brand, earned, expires):
    b = await with_policy(
        db, brand.brand, {"expiry": {"kind": "calendar", "count": 1, "unit": "month"}, "notice_days": []}
    )
    m = await member(db, b, "m", earned)
    await earn(db, b, m.id, 25, earned)
    assert (await entries_of(db, m.id, "earn"))[0].expires_at == expires
    assert (await expire_due(db, now=expires - timedelta(minutes=1), brand_id=b.id)).expired == 0
    assert (await figures(db, b, m.id)).available == 25
    assert (await expire_due(db, now=expires, brand_id=b.id)).expired == 25
    assert (await figures(db, b, m.id)).available == 0


async def test_expiring_notices_go_out_once_per_lot_and_threshold(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 2}, "notice_days": [30, 7]})
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 60, T0)
    expiry = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    runs = [expiry - timedelta(days=31), expiry - timedelta(days=29), expiry - timedelta(days=28)]
    runs += [expiry - timedelta(days=6), expiry - timedelta(days=5)]
    sent = [(await expire_due(db, now=at, brand_id=b.id)).notices for at in runs]
    assert sent == [0, 1, 0, 1, 0]
    notices = [data for topic, data in await topics(db, b) if topic == "points.expiring"]
    assert [(d["points"], d["days_before"], d["expires_at"]) for d in notices] == [
        (60, 30, expiry.isoformat()),
        (60, 7, expiry.isoformat()),
    ]


async def test_inactivity_expires_all_points_after_months_without_activity(db, brand):
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "inactivity", "months": 6}, "notice_days": [7]})
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 30, T0)
    await earn(db, b, m.id, 20, T0 + timedelta(days=40))  # activity moves the deadline
    last = T0 + timedelta(days=40)
    deadline = datetime(2026, 8, 24, 8, 0, tzinfo=UTC)  # 10:00 in Rome, now in summer time
    assert last == datetime(2026, 2, 24, 9, 0, tzinfo=UTC)
    async with db.read() as session:
        view = await point_views.points_view(session, brand=b, member_id=m.id, now=last)
    assert [(e.points, e.expires_at) for e in view.expiring] == [(50, deadline)]
    assert (await expire_due(db, now=deadline - timedelta(days=6), brand_id=b.id)).notices == 1
    assert (await expire_due(db, now=deadline - timedelta(minutes=1), brand_id=b.id)).expired == 0
    assert (await expire_due(db, now=deadline, brand_id=b.id)).expired == 50
    assert len(await entries_of(db, m.id, "expire")) == 2
    assert await figures(db, b, m.id) == await replayed(db, m.id)


@pytest.mark.postgres
async def test_two_concurrent_expiry_runs_expire_each_lot_once(backend, database_url, db, brand):
    if not backend.startswith("postgres"):
        pytest.skip("concurrency of separate connections is a PostgreSQL matter (SQLite has one writer)")
    b = await with_policy(db, brand.brand, {"expiry": {"kind": "rolling", "months": 1}, "notice_days": [7]})
    members = [await member(db, b, f"m{i}", T0) for i in range(30)]
    for i, m in enumerate(members):
        await earn(db, b, m.id, 10 + i, T0)
        await earn(db, b, m.id, 5, T0 + timedelta(days=1))
    now = datetime(2026, 2, 20, tzinfo=UTC)
    other = Database(create_engine(database_url))
    try:
        runs = await asyncio.gather(expire_due(db, now=now, brand_id=b.id), expire_due(other, now=now, brand_id=b.id))
    finally:
        await other.dispose()
    assert sum(r.expired for r in runs) == sum(15 + i for i in range(30))
    for m in members:
        assert len(await entries_of(db, m.id, "expire")) == 2
        assert (await figures(db, b, m.id)).available == 0


async def test_new_activity_does_not_revive_points_lapsed_for_inactivity(db, brand, clock):
    from engine.earning import EarningRuleSpec
    from engine.events import Event
    from engine.pipeline import Pipeline
    from engine.points import PointsProcessor
    from engine.rules_store import put_rule

    b = await with_policy(db, brand.brand, {"expiry": {"kind": "inactivity", "months": 3}, "notice_days": []})
    await put_rule(db, brand_id=b.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=5), now=T0)
    m = await member(db, b, "m", T0)
    await earn(db, b, m.id, 100, T0)
    later = T0 + timedelta(days=120)
    async with db.read() as session:
        assert await point_views.available(session, brand_id=b.id, member_id=m.id, now=later) == 0
    clock.set(later)
    pipeline = Pipeline(db, processors=[PointsProcessor()], clock=clock)
    await pipeline.process(b, [Event(id="v", member="m", type="visit", occurred_at=later, properties={})])
    stored = await figures(db, b, m.id)
    assert (stored.available, stored.lifetime_earned) == (5, 105)
    assert [e.points for e in await entries_of(db, m.id, "expire")] == [-100]
    assert stored == await replayed(db, m.id)
