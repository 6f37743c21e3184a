"""Coalesced single events keep the semantics of separate requests, on both backends.

The HTTP test client hands requests to the app one at a time, so the coalescer is driven here directly,
on a real pipeline, with requests really in flight together.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from engine.coalesce import Coalescer
from engine.earning import EarningRuleSpec
from engine.events import Event
from engine.orm import EventRow, LedgerRow
from engine.pipeline import Pipeline
from engine.points import PointsProcessor
from engine.rules_store import put_rule


def ev(event_id: str, member: str, at: str) -> Event:
    return Event(id=event_id, member=member, type="visit", occurred_at=datetime.fromisoformat(at), properties={})


class Counted(Pipeline):
    """A pipeline that records how many events each call carried."""

    sizes: list[int]

    async def process(self, brand: Any, events: Any) -> Any:
        self.sizes.append(len(events))
        return await super().process(brand, events)


async def test_concurrent_duplicates_and_a_capped_member_coalesced(db, brand, clock):
    await put_rule(
        db,
        brand_id=brand.brand.id,
        spec=EarningRuleSpec(key="visit", event_type="visit", points=10, daily_cap=30),
        now=clock.now(),
    )
    pipeline = Counted(db, processors=[PointsProcessor()], clock=clock)
    pipeline.sizes = []
    coalescer = Coalescer(pipeline, window=0.005)
    same = ev("same-id", "bruno", "2026-11-20T09:00:00+00:00")
    visits = [ev(f"v{i}", "carla", f"2026-11-20T09:0{i}:00+00:00") for i in range(5)]
    requests = [same] * 20 + visits
    answers = await asyncio.gather(*(coalescer.process(brand.brand, [e]) for e in requests))
    assert sum(pipeline.sizes) == len(requests) and max(pipeline.sizes) > 1  # processed together
    assert sorted(a[0].duplicate for a in answers[:20]) == [False] + [True] * 19
    assert {tuple(a[0].effects) for a in answers[:20]} == {tuple(answers[0][0].effects)}
    # carla's daily cap (30) is reached in arrival order, as five separate requests would reach it
    earned = [sum(getattr(e, "points", 0) for e in a[0].effects) for a in answers[20:]]
    assert earned == [10, 10, 10, 0, 0]
    again = await asyncio.gather(*(coalescer.process(brand.brand, [e]) for e in visits))
    assert [a[0].duplicate for a in again] == [True] * 5
    async with db.read() as session:
        logged = await session.scalar(
            select(func.count()).select_from(EventRow).where(EventRow.brand_id == brand.brand.id)
        )
        points = await session.scalar(select(func.sum(LedgerRow.points)).where(LedgerRow.brand_id == brand.brand.id))
    assert logged == 6
    assert points == 40


async def test_single_events_over_http_go_through_the_coalescer_and_batches_do_not(client, brand, monkeypatch):
    """The route really coalesces (a lost call in a merge once sent every request straight to the pipeline)."""
    seen: list[int] = []
    original = Coalescer.process

    async def recorded(self: Coalescer, brand_: Any, events: Any) -> Any:
        seen.append(len(events))
        return await original(self, brand_, events)

    monkeypatch.setattr(Coalescer, "process", recorded)
    pipeline_calls: list[int] = []
    services = client.app.state.services
    process = services.pipeline.process

    async def counted(brand_: Any, events: Any, **kwargs: Any) -> Any:
        pipeline_calls.append(len(events))
        return await process(brand_, events, **kwargs)

    monkeypatch.setattr(services.pipeline, "process", counted)
    body = {"id": "h1", "member": "anna", "type": "visit", "occurred_at": "2026-11-20T09:00:00Z"}
    single = await client.post("/v1/events", json=body, headers=brand.headers)
    assert single.status_code == 200, single.text
    batch = {"events": [{**body, "id": "h2"}, {**body, "id": "h3"}]}
    both = await client.post("/v1/events", json=batch, headers=brand.headers)
    assert both.status_code == 200, both.text
    assert seen == [1, 2] and pipeline_calls == [1, 2]
    coalescer = client.app.state["event_coalescer"]
    assert coalescer.inflight == services.settings.coalesce_inflight
    assert coalescer.window == services.settings.coalesce_ms / 1000
