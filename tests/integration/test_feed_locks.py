"""The feed's inserts share-lock members in id order, as the pipeline's units lock them: no deadlock between them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text

from engine import members as members_repo
from engine.orm import MemberRow
from notifications import feed
from notifications.orm import NotificationRow


async def test_a_feed_pass_and_a_unit_over_the_same_members_do_not_deadlock(db, brand, clock, backend):
    if not backend.startswith("postgres"):
        pytest.skip("row locks are PostgreSQL's")
    now = clock.now()
    async with db.write() as session:
        found = await members_repo.ensure_and_lock(
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
