"""The feed's inserts and the pipeline's member locks: no deadlock, and no wait on a unit's members.

A feed row's foreign-key check share-locks its member's key. The pipeline locks members ``FOR NO KEY UPDATE``,
which that share lock does not conflict with; other code locks a member ``FOR UPDATE`` (an erasure, an
enrolment update), which it does: the feed inserts in member id order, as units lock them.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from engine import member_locks
from engine.orm import MemberRow
from notifications import feed
from notifications.orm import NotificationRow


async def test_a_feed_pass_and_a_unit_over_the_same_members_do_not_deadlock(db, brand, clock, backend):
    if not backend.startswith("postgres"):
        pytest.skip("row locks are PostgreSQL's")
    now = clock.now()
    async with db.write() as session:
        found = await member_locks.ensure_and_lock(
            session, db=db, brand_id=brand.brand.id, external_ids=["lock-a", "lock-b"], now=now
        )
    low, high = sorted(m.id for m in found.values())
    rows = [  # in outbox order: the higher member first
        feed.new_row(brand_id=brand.brand.id, member_id=member_id, kind="badge", source=f"lock-{n}", data={}, now=now)
        for n, member_id in enumerate((high, low))
    ]
    async with db.write() as unit:  # a unit of work: its members locked by id, the lower one first
        await unit.execute(text("SET LOCAL lock_timeout = '5s'"))
        await unit.execute(select(MemberRow.id).where(MemberRow.id == low).with_for_update())

        async def feed_pass() -> set[tuple[int, int]]:
            async with db.write() as session:
                return await feed.insert_rows(session, rows)

        inserting = asyncio.create_task(feed_pass())
        await asyncio.sleep(0.5)  # the pass now waits for the lower member (it must hold no lock on the higher)
        assert not inserting.done()
        # The unit goes on to the higher member: a pass holding its share lock would deadlock here.
        await unit.execute(select(MemberRow.id).where(MemberRow.id == high).with_for_update())
    assert await asyncio.wait_for(inserting, 10) == {(brand.brand.id, low), (brand.brand.id, high)}
    async with db.read() as session:
        sources = set(
            await session.scalars(select(NotificationRow.source).where(NotificationRow.brand_id == brand.brand.id))
        )
    assert {"lock-0", "lock-1"} <= sources


async def test_rows_referring_to_a_locked_member_do_not_wait_for_the_unit_but_a_second_unit_does(
    db, brand, clock, backend
):
    """The unit's member lock (``FOR NO KEY UPDATE``) leaves foreign-key checks alone and still queues units."""
    if not backend.startswith("postgres"):
        pytest.skip("row locks are PostgreSQL's")
    now = clock.now()
    external_ids = ["nokey-a", "nokey-b"]
    async with db.write() as session:
        await member_locks.ensure_and_lock(session, db=db, brand_id=brand.brand.id, external_ids=external_ids, now=now)
    async with db.write() as unit:  # a unit of work holding its members' locks, as the pipeline takes them
        locked = await member_locks.ensure_and_lock(
            unit, db=db, brand_id=brand.brand.id, external_ids=external_ids, now=now
        )
        rows = [
            feed.new_row(brand_id=brand.brand.id, member_id=m.id, kind="badge", source=f"nokey-{m.external_id}",
                         data={}, now=now)
            for m in locked.values()
        ]  # fmt: skip

        async def feed_pass() -> set[tuple[int, int]]:
            async with db.write() as session:
                await session.execute(text("SET LOCAL lock_timeout = '5s'"))
                return await feed.insert_rows(session, rows)

        # A feed row's foreign-key check share-locks the member's key only: it does not wait for the unit.
        assert await asyncio.wait_for(feed_pass(), 10) == {(brand.brand.id, m.id) for m in locked.values()}

        async def second_unit() -> None:
            async with db.write() as session:
                await member_locks.ensure_and_lock(
                    session, db=db, brand_id=brand.brand.id, external_ids=["nokey-b"], now=now
                )

        waiting = asyncio.create_task(second_unit())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # a second unit over one of the members queues behind the first
    await asyncio.wait_for(waiting, 10)
