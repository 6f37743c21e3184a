"""Small asyncio helpers whose behaviour does not change between Python versions.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives in the same loop iteration as
the awaited result (the result is returned and the task carries on), so a background loop that waits
with it can survive ``task.cancel()`` and hang a shutdown that awaits it. ``asyncio.timeout`` does not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

T = TypeVar("T")
log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set. Cancellation propagates."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def within(awaitable: Awaitable[T], timeout: float) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``TimeoutError`` after). Cancellation propagates."""
    async with asyncio.timeout(timeout):
        return await awaitable


async def cancel_and_wait(tasks: list[asyncio.Task[Any]], *, timeout: float = 10.0) -> list[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait at most ``timeout`` seconds for them to end; returns those still running.

    Shutdown must not hang on a background task that is slow to unwind (a Redis or database call in a
    ``finally`` that does not answer): what is still running after the timeout is left to the loop's close.
    """
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        log.error("background task %s did not stop within %ss; leaving it", task.get_name(), timeout)
    return list(pending)
