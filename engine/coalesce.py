"""Coalescing of concurrent single events: one unit of work and one commit for a burst of requests.

Single-event requests of one brand arriving within a short window (``QUESTLINE_COALESCE_MS``) in one
worker are processed as one batch through the same pipeline; each request is answered with its own
result. Semantics are those of a batch: arrival order is kept (so per-member order too), an event id seen
twice answers ``duplicate`` for the later request, exactly-once rests on the same unique key. Requests are
validated before they join. If the joint batch fails, its requests are processed again one by one, so one
bad request cannot fail the others.

At most ``inflight`` batches of one brand run at a time in a worker (``QUESTLINE_COALESCE_INFLIGHT``):
requests that arrive while they run wait and leave together as the next batch once one finishes (group
commit). The batch size therefore follows the load: one event under a light load, tens under a burst,
instead of many tiny batches competing for connections and member locks.

When a batch finishes, the lane expects as many requests as that batch answered plus those that waited
for it: clients that send their next event when answered (a till, an app's queue) come back together.
The next batch leaves as soon as that many are waiting, or when the window has passed since the finish,
whichever is first. Without this, a closed loop of clients splits into two groups that alternate for ever
(one group's batch runs while the other's requests arrive, so they never meet), and the batches stay
small. Under a light load the expected count is one, so a lone event leaves at once instead of after the
window. A lane new to the worker waits for the window, as it has nothing to expect yet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.metrics import COALESCED_EVENTS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine.events import Event
    from engine.ids import BrandId
    from engine.pipeline import EventResult, Pipeline
    from engine.tenants import Brand

log = logging.getLogger(__name__)

#: Idle lanes (brands with nothing waiting or running) a worker keeps, with what each expects next.
_IDLE_LANES = 1024


@dataclass(slots=True)
class _Lane:
    """One brand's waiting requests and running batches in this worker."""

    brand: Brand
    events: list[Event] = field(default_factory=list)
    waiters: list[asyncio.Future[EventResult]] = field(default_factory=list)
    running: int = 0
    due: bool = False
    """The waiting requests' window has passed: they leave with the next free slot."""
    timer: asyncio.TimerHandle | None = None
    expect: int = 0
    """How many waiting requests make the next batch leave before its window ends (0: none yet)."""


class Coalescer:
    """Joins single events of one brand that arrive within ``window`` seconds into one pipeline call."""

    def __init__(self, pipeline: Pipeline, *, window: float, max_events: int = 1000, inflight: int = 1) -> None:
        self.pipeline = pipeline
        self.window = window
        self.max_events = max_events
        self.inflight = max(1, inflight)
        self._lanes: dict[BrandId, _Lane] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def process(self, brand: Brand, events: Sequence[Event]) -> list[EventResult]:
        """Process ``events`` (already validated): single events are coalesced, batches go straight through."""
        if self.window <= 0 or len(events) != 1:
            return await self.pipeline.process(brand, events)
        lane = self._lanes.get(brand.id)
        if lane is None:
            lane = self._lanes[brand.id] = _Lane(brand=brand)
        lane.brand = brand  # the newest configuration version the caller resolved
        waiter: asyncio.Future[EventResult] = asyncio.get_running_loop().create_future()
        lane.events.append(events[0])
        lane.waiters.append(waiter)
        if len(lane.events) >= self.max_events or len(lane.events) == lane.expect:
            lane.due = True
            self._start(lane)
        elif lane.timer is None and not lane.due:
            lane.timer = asyncio.get_running_loop().call_later(self.window, self._window_ended, lane)
        # The batch runs in its own task: a request that goes away does not cancel the others' work.
        return [await asyncio.shield(waiter)]

    def _window_ended(self, lane: _Lane) -> None:
        lane.timer = None
        lane.due = True
        self._start(lane)

    def _start(self, lane: _Lane) -> None:
        """Start the waiting requests as one batch if their window has passed and a slot is free."""
        while lane.due and lane.events and lane.running < self.inflight:
            events, waiters = lane.events[: self.max_events], lane.waiters[: self.max_events]
            del lane.events[: self.max_events], lane.waiters[: self.max_events]
            if not lane.events:
                lane.due = False
                if lane.timer is not None:
                    lane.timer.cancel()
                    lane.timer = None
            lane.running += 1
            task = asyncio.get_running_loop().create_task(self._run(lane, events, waiters))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        if not lane.events and not lane.running and len(self._lanes) > _IDLE_LANES:
            # An idle lane keeps what it expects next; beyond this many brands in one worker, idle ones go.
            for brand_id in [b for b, idle in self._lanes.items() if not idle.events and not idle.running]:
                del self._lanes[brand_id]

    async def _run(self, lane: _Lane, events: list[Event], waiters: list[asyncio.Future[EventResult]]) -> None:
        try:
            await self._run_batch(lane.brand, events, waiters)
        finally:
            lane.running -= 1
            # Those just answered may come back at once: wait for them and the ones waiting, or a window.
            lane.expect = min(self.max_events, len(events) + len(lane.events))
            lane.due = len(lane.events) >= lane.expect
            if lane.timer is not None:
                lane.timer.cancel()
                lane.timer = None
            if lane.events and not lane.due:
                lane.timer = asyncio.get_running_loop().call_later(self.window, self._window_ended, lane)
            self._start(lane)

    async def _run_batch(self, brand: Brand, events: list[Event], waiters: list[asyncio.Future[EventResult]]) -> None:
        COALESCED_EVENTS.observe(len(events))
        if len(events) == 1:
            await self._one_by_one(brand, events, waiters)
            return
        try:
            results = await self.pipeline.process(brand, events)
        except Exception:
            log.info("a coalesced batch of %d events failed; processing them one by one", len(events))
            await self._one_by_one(brand, events, waiters)
            return
        for waiter, result in zip(waiters, results, strict=True):
            if not waiter.done():
                waiter.set_result(result)

    async def _one_by_one(self, brand: Brand, events: list[Event], waiters: list[asyncio.Future[EventResult]]) -> None:
        for event, waiter in zip(events, waiters, strict=True):
            try:
                result = (await self.pipeline.process(brand, [event]))[0]
            except Exception as exc:  # this request's own failure, answered to it alone
                if not waiter.done():
                    waiter.set_exception(exc)
                continue
            if not waiter.done():
                waiter.set_result(result)
