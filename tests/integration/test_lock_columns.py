"""Values read with the member lock include what the unit that held the lock before committed.

A unit of work that waits for a member's row lock waits for the unit before it on that member, and must then
read the member as that unit left them: the two run as if one after the other (progress and points are a fold
over the member's events in order). PostgreSQL computes every column of a ``SELECT … FOR UPDATE`` in the
snapshot the statement began with, before the wait. A segment metric read as a column of the lock statement
therefore missed the other unit's writes, and a segment-gated rule judged the member as they were before it.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from engine.effects import PointsAwarded
from engine.events import Event
from tests.helpers import event

RULES = [
    {"key": "visit", "event_type": "visit", "points": 10},
    {"key": "rich-bonus", "event_type": "check", "points": 1, "filter": {"segment": "rich"}},
]


def _one(event_id: str, kind: str, at: str) -> list[Event]:
    return [msgspec.convert(event(event_id, "zoe", kind, at), Event, strict=False)]


def _points(results) -> int:  # type: ignore[no-untyped-def]
    return sum(e.points for r in results for e in r.effects if isinstance(e, PointsAwarded))


async def test_a_unit_that_waited_for_a_members_lock_sees_the_holders_points_in_its_segments(
    client, brand, backend, monkeypatch
):
    if not backend.startswith("postgres"):
        pytest.skip("row locks are PostgreSQL's")
    headers = brand.headers
    segment = {"slug": "rich", "clauses": [{"metric": "points_balance", "gte": 10}]}
    assert (await client.put("/v1/segments/rich", json=segment, headers=headers)).status_code == 201
    for rule in RULES:
        answer = await client.put(f"/v1/earning-rules/{rule['key']}", json=rule, headers=headers)
        assert answer.status_code in (200, 201), answer.text
    pipeline = client.app.state.services.pipeline

    async def run(events: list[Event]) -> list:  # type: ignore[type-arg]
        # In the app's own loop, as its requests run (the database's pools belong to it).
        return await asyncio.to_thread(client.blocking_portal.call, pipeline.process, brand.brand, events)

    assert _points(await run(_one("c0", "check", "2026-11-20T08:00:00Z"))) == 0  # no points yet: not rich

    # The visit's unit takes zoe's lock, then stops before it writes, until the check's unit waits for the lock.
    step = pipeline.processors[0]
    process = step.process
    inside, go_on = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    async def held(uow):  # type: ignore[no-untyped-def]
        if any(ctx.event.id == "v1" for ctx in uow.events):
            loop.call_soon_threadsafe(inside.set)
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(go_on.wait(), loop))
        await process(uow)

    monkeypatch.setattr(step, "process", held)
    visit = asyncio.create_task(run(_one("v1", "visit", "2026-11-20T09:00:00Z")))
    await asyncio.wait_for(inside.wait(), 10)
    check = asyncio.create_task(run(_one("c1", "check", "2026-11-20T09:01:00Z")))
    await asyncio.sleep(0.5)
    assert not check.done()  # its unit waits for zoe's lock, which the visit's unit holds
    go_on.set()
    assert _points(await asyncio.wait_for(visit, 10)) == 10
    # The check ran after the visit committed: zoe had 10 points, so she was in the segment.
    assert _points(await asyncio.wait_for(check, 10)) == 1
