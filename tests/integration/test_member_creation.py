"""Members a unit of work creates: what the table holds, and a member two units create at once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from engine import member_locks
from engine import members as members_repo
from engine.orm import MemberRow


async def test_created_members_are_returned_as_stored(db, brand, clock):
    now = clock.now()
    async with db.write() as session:
        found = await member_locks.ensure_and_lock(
            session, db=db, brand_id=brand.brand.id, external_ids=["new-b", "new-a", "new-b"], now=now
        )
    assert sorted(found) == ["new-a", "new-b"]
    async with db.read() as session:
        for external_id, member in found.items():
            stored = await members_repo.get_member(session, brand_id=brand.brand.id, external_id=external_id)
            assert member == stored
            row = await session.scalar(select(MemberRow).where(MemberRow.id == member.id))
            assert row is not None
            assert (row.joined_via, row.email, row.updated_at) == ("", None, now)


async def test_a_member_a_concurrent_unit_is_creating_is_waited_for_and_locked(db, brand, clock, backend):
    if not backend.startswith("postgres"):
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer at a time)")
    now = clock.now()
    brand_id = brand.brand.id
    async with db.write() as first:
        await first.execute(text("SET LOCAL lock_timeout = '5s'"))
        mine = await member_locks.ensure_and_lock(first, db=db, brand_id=brand_id, external_ids=["race-x"], now=now)

        async def second_unit() -> dict[str, members_repo.Member]:
            async with db.write() as second:
                await second.execute(text("SET LOCAL lock_timeout = '5s'"))
                return await member_locks.ensure_and_lock(
                    second, db=db, brand_id=brand_id, external_ids=["race-x", "race-y"], now=now
                )

        creating = asyncio.create_task(second_unit())
        await asyncio.sleep(0.5)  # it now waits on the first unit's uncommitted row of race-x
        assert not creating.done()
    theirs = await asyncio.wait_for(creating, 10)
    assert theirs["race-x"] == mine["race-x"]  # the first unit's member, not a second one
    assert theirs["race-y"].external_id == "race-y"
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).where(MemberRow.brand_id == brand_id, MemberRow.external_id.in_(["race-x", "race-y"]))
        )
    assert count == 2
