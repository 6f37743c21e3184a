"""Small asyncio helpers whose behaviour does not change between Python versions.

``asyncio.wait_for`` on Python 3.11 swallows a cancellation that arrives in the same loop iteration as
the awaited result (the result is returned and the task carries on), so a background loop that waits
with it can survive ``task.cancel()`` and hang a shutdown that awaits it. ``asyncio.timeout`` does not.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable

T = TypeVar("T")


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
