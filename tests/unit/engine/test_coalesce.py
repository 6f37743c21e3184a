"""The coalescer of single events: one pipeline call per burst, each request its own answer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from engine.coalesce import Coalescer
from engine.errors import ValidationError
from engine.events import Event
from engine.pipeline import EventResult
from engine.tenants import Brand

AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


def brand(brand_id: int = 1) -> Brand:
    return Brand(id=brand_id, slug=f"b{brand_id}", name="B", timezone="Europe/Rome", config_version=1, settings={})


def ev(event_id: str, member: str = "anna") -> Event:
    return Event(id=event_id, member=member, type="visit", occurred_at=AT, properties={})


class FakePipeline:
    """Answers like a batch would (a repeated id is a duplicate); fails a whole call holding ``bad``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[str]]] = []
        self.seen: set[str] = set()

    async def process(self, brand: Brand, events: Any) -> list[EventResult]:
        ids = [e.id for e in events]
        self.calls.append((brand.id, ids))
        if "bad" in ids:
            raise ValidationError("bad event", field="$.id")
        results = []
        for e in events:
            results.append(EventResult(id=e.id, member=e.member, duplicate=e.id in self.seen, effects=[]))
            self.seen.add(e.id)
        return results


async def test_a_burst_is_one_call_in_arrival_order_each_answered_alone():
    fake = FakePipeline()
    coalescer = Coalescer(fake, window=0.02)  # type: ignore[arg-type]
    requests = [ev("a"), ev("b", "bruno"), ev("a"), ev("c")]
    answers = await asyncio.gather(*(coalescer.process(brand(), [e]) for e in requests))
    assert fake.calls == [(1, ["a", "b", "a", "c"])]
    assert [(r[0].id, r[0].member, r[0].duplicate) for r in answers] == [
        ("a", "anna", False),
        ("b", "bruno", False),
        ("a", "anna", True),  # the later request of a repeated id is the duplicate, as in a batch
        ("c", "anna", False),
    ]


async def test_a_failing_batch_falls_back_to_one_by_one():
    fake = FakePipeline()
    coalescer = Coalescer(fake, window=0.02)  # type: ignore[arg-type]
    answers = await asyncio.gather(
        *(coalescer.process(brand(), [ev(i)]) for i in ("x", "bad", "y")), return_exceptions=True
    )
    assert fake.calls == [(1, ["x", "bad", "y"]), (1, ["x"]), (1, ["bad"]), (1, ["y"])]
    assert [a[0].id for a in (answers[0], answers[2])] == ["x", "y"]  # type: ignore[index]
    assert isinstance(answers[1], ValidationError)


async def test_batches_per_brand_off_switch_and_size_limit():
    fake = FakePipeline()
    coalescer = Coalescer(fake, window=0.02, max_events=2)  # type: ignore[arg-type]
    await asyncio.gather(
        coalescer.process(brand(1), [ev("a")]),
        coalescer.process(brand(2), [ev("b")]),
        coalescer.process(brand(1), [ev("c")]),
        coalescer.process(brand(1), [ev("d")]),
    )
    assert sorted(fake.calls) == [(1, ["a", "c"]), (1, ["d"]), (2, ["b"])]
    fake.calls.clear()
    await coalescer.process(brand(1), [ev("e"), ev("f")])  # a batch request goes straight through
    off = Coalescer(fake, window=0)  # type: ignore[arg-type]
    await asyncio.gather(off.process(brand(1), [ev("g")]), off.process(brand(1), [ev("h")]))
    assert fake.calls == [(1, ["e", "f"]), (1, ["g"]), (1, ["h"])]


async def test_a_request_that_goes_away_does_not_cancel_the_others():
    fake = FakePipeline()
    coalescer = Coalescer(fake, window=0.02)  # type: ignore[arg-type]
    leaving = asyncio.ensure_future(coalescer.process(brand(), [ev("a")]))
    staying = asyncio.ensure_future(coalescer.process(brand(), [ev("b")]))
    await asyncio.sleep(0)
    leaving.cancel()
    assert (await staying)[0].id == "b"
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert fake.calls == [(1, ["a", "b"])]


class SlowPipeline(FakePipeline):
    """Each call takes until ``release`` is set, so requests pile up behind the running batches."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.running = 0
        self.most_running = 0

    async def process(self, brand: Brand, events: Any) -> list[EventResult]:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            return await super().process(brand, events)
        finally:
            self.running -= 1


async def test_requests_arriving_while_batches_run_wait_and_leave_together():
    slow = SlowPipeline()
    coalescer = Coalescer(slow, window=0.001, inflight=1)  # type: ignore[arg-type]
    first = asyncio.ensure_future(coalescer.process(brand(), [ev("a")]))
    await asyncio.sleep(0.01)  # "a" leaves alone after its window and holds the only slot
    later = [asyncio.ensure_future(coalescer.process(brand(), [ev(i)])) for i in ("b", "c", "a", "d")]
    await asyncio.sleep(0.01)  # their window passed, but no slot is free: they wait
    assert slow.calls == []  # (a call is recorded once released)
    assert slow.running == 1
    slow.release.set()
    answers = [await first, *[await f for f in later]]
    assert slow.calls == [(1, ["a"]), (1, ["b", "c", "a", "d"])]
    assert slow.most_running == 1
    assert [(r[0].id, r[0].duplicate) for r in answers] == [
        ("a", False), ("b", False), ("c", False), ("a", True), ("d", False),
    ]  # fmt: skip


async def test_inflight_bounds_the_batches_running_at_once_per_brand():
    slow = SlowPipeline()
    coalescer = Coalescer(slow, window=0.001, max_events=2, inflight=2)  # type: ignore[arg-type]
    pending = [asyncio.ensure_future(coalescer.process(brand(), [ev(f"e{i}")])) for i in range(9)]
    other = asyncio.ensure_future(coalescer.process(brand(2), [ev("z")]))
    await asyncio.sleep(0.02)
    assert slow.running == 3  # two batches of brand 1 (full ones), one of brand 2
    slow.release.set()
    await asyncio.gather(*pending, other)
    assert slow.most_running == 3
    ones = [ids for b, ids in slow.calls if b == 1]
    assert [i for ids in ones for i in ids] == [f"e{i}" for i in range(9)]  # arrival order kept
    assert all(len(ids) <= 2 for ids in ones)
    # idle brands leave nothing waiting, running or timed behind, only what they expect next
    assert all(not lane.events and not lane.running and lane.timer is None for lane in coalescer._lanes.values())


async def test_a_closed_loop_of_clients_merges_into_one_batch_instead_of_alternating_groups():
    """Clients that send again when answered come back together: the next batch waits for them (a window at most).

    Without the wait, the seven requests that arrived while the first client's batch ran would leave as
    soon as it finished, before that client's next request: two groups (7 and 1) alternating for ever.
    """

    class TakesTime(FakePipeline):
        async def process(self, brand: Brand, events: Any) -> list[EventResult]:
            await asyncio.sleep(0.01)
            return await super().process(brand, events)

    timed = TakesTime()
    coalescer = Coalescer(timed, window=0.05)  # type: ignore[arg-type]

    async def client(name: str, rounds: int) -> None:
        for round_no in range(rounds):
            await coalescer.process(brand(), [ev(f"{name}-{round_no}", name)])
            await asyncio.sleep(0.001 * (int(name[1:]) % 3))  # clients come back at slightly different times

    first = asyncio.ensure_future(client("c0", 6))
    await asyncio.sleep(0.055)  # c0's first batch left alone after its window and is running
    await asyncio.gather(first, *(client(f"c{i}", 5) for i in range(1, 8)))
    assert [len(ids) for _, ids in timed.calls] == [1, 8, 8, 8, 8, 8]


async def test_each_batch_size_is_observed_on_the_histogram():
    def count(le: str) -> float:
        return REGISTRY.get_sample_value("questline_coalesced_batch_events_bucket", {"le": le}) or 0.0

    before = count("1.0"), count("4.0"), count("+Inf")
    coalescer = Coalescer(FakePipeline(), window=0.02)  # type: ignore[arg-type]
    await asyncio.gather(*(coalescer.process(brand(), [ev(i)]) for i in "abc"))
    await coalescer.process(brand(), [ev("d")])
    assert (count("1.0"), count("4.0"), count("+Inf")) == (before[0] + 1, before[1] + 2, before[2] + 2)


async def test_under_a_light_load_a_lone_event_leaves_without_waiting_for_the_window():
    fake = FakePipeline()
    coalescer = Coalescer(fake, window=0.5)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    started = loop.time()
    await coalescer.process(brand(), [ev("a")])  # a lane new to the worker waits for its window
    assert loop.time() - started >= 0.5
    started = loop.time()
    await coalescer.process(brand(), [ev("b")])  # the last batch answered one request: one is enough now
    await coalescer.process(brand(), [ev("c")])
    assert loop.time() - started < 0.25
    assert fake.calls == [(1, ["a"]), (1, ["b"]), (1, ["c"])]
