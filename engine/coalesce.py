"""Coalescing of concurrent single events: one unit of work and one commit for a burst of requests.

Single-event requests of one brand arriving within a short window (``QUESTLINE_COALESCE_MS``) in one
worker are processed as one batch through the same pipeline; each request is answered with its own
result. Semantics are those of a batch: arrival order is kept (so per-member order too), an event id seen
twice answers ``duplicate`` for the later request, exactly-once rests on the same unique key. Requests are
validated before they join. If the joint batch fails, its requests are processed again one by one, so one
bad request cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.events import Event
    from engine.ids import BrandId
    from engine.pipeline import EventResult, Pipeline
    from engine.tenants import Brand

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Batch:
    brand: Brand
    events: list[Event] = field(default_factory=list)
    waiters: list[asyncio.Future[EventResult]] = field(default_factory=list)
    flushed: bool = False


class Coalescer:
    """Joins single events of one brand that arrive within ``window`` seconds into one pipeline call."""

    def __init__(self, pipeline: Pipeline, *, window: float, max_events: int = 1000) -> None:
        self.pipeline = pipeline
        self.window = window
        self.max_events = max_events
        self._open: dict[BrandId, _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def process(self, brand: Brand, events: Sequence[Event]) -> list[EventResult]:
        """Process ``events`` (already validated): single events are coalesced, batches go straight through."""
        if self.window <= 0 or len(events) != 1:
            return await self.pipeline.process(brand, events)
        batch = self._open.get(brand.id)
        if batch is None:
            batch = self._open[brand.id] = _Batch(brand=brand)
            asyncio.get_running_loop().call_later(self.window, self._flush, batch)
        waiter: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        batch.events.append(events[0])
        batch.waiters.append(waiter)
        if len(batch.events) >= self.max_events:
            self._flush(batch)
        # The batch runs in its own task: a request that goes away does not cancel the others' work.
        return [await asyncio.shield(waiter)]

    def _flush(self, batch: _Batch) -> None:
        if batch.flushed:
            return  # full before its window ended
        batch.flushed = True
        if self._open.get(batch.brand.id) is batch:
            del self._open[batch.brand.id]
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch) -> None:
        if len(batch.events) == 1:
            await self._one_by_one(batch)
            return
        try:
            results = await self.pipeline.process(batch.brand, batch.events)
        except Exception:
            log.info("a coalesced batch of %d events failed; processing them one by one", len(batch.events))
            await self._one_by_one(batch)
            return
        for waiter, result in zip(batch.waiters, results, strict=True):
            if not waiter.done():
                waiter.set_result(result)

    async def _one_by_one(self, batch: _Batch) -> None:
        for event, waiter in zip(batch.events, batch.waiters, strict=True):
            try:
                result = (await self.pipeline.process(batch.brand, [event]))[0]
            except Exception as exc:  # this request's own failure, answered to it alone
                if not waiter.done():
                    waiter.set_exception(exc)
                continue
            if not waiter.done():
                waiter.set_result(result)
