"""Background loops stop when cancelled, even when their wake-up lands in the same loop iteration."""

from __future__ import annotations

import asyncio

import pytest

from engine.aio import wait_event, within


async def _loop(event: asyncio.Event, wait: object) -> None:
    while True:
        await wait(event)  # type: ignore[operator]
        event.clear()


async def _cancel_as_it_wakes(wait: object) -> bool:
    """Set the event and cancel the waiting loop in one step; True when the loop ended."""
    event = asyncio.Event()
    task = asyncio.create_task(_loop(event, wait))
    await asyncio.sleep(0.01)  # the loop is waiting
    event.set()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.5)
    if not done:  # the cancellation was swallowed: cancel again while it only waits
        task.cancel()
        await asyncio.wait([task], timeout=0.5)
    return bool(done)


async def test_wait_event_lets_cancellation_through_when_woken_at_the_same_time() -> None:
    assert await _cancel_as_it_wakes(lambda e: wait_event(e, 5.0))


async def test_the_race_it_guards_against_is_real_on_this_python() -> None:
    """The control: ``asyncio.wait_for`` on Python 3.11 swallows that cancellation (fixed in 3.12)."""
    import sys

    ended = await _cancel_as_it_wakes(lambda e: asyncio.wait_for(e.wait(), 5.0))
    assert ended is (sys.version_info >= (3, 12))


async def test_wait_event_times_out_and_reports_it() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True


async def test_within_bounds_an_awaitable() -> None:
    assert await within(asyncio.sleep(0, result=7), 1.0) == 7
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(1.0), 0.01)


async def test_cancel_and_wait_does_not_hang_on_a_task_that_will_not_stop() -> None:
    from engine.aio import cancel_and_wait

    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # swallows every cancellation

    async def polite() -> None:
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    left = await cancel_and_wait(tasks, timeout=0.2)
    assert left == [tasks[0]] and tasks[1].cancelled()
    release.set()
    tasks[0].cancel()
    await asyncio.wait([tasks[0]], timeout=1)
