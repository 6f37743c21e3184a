"""The lane of a :class:`~leaderboards.script_batch.ScriptBatch` on the real Redis: one kept connection, replies in order.

fakeredis has no socket to keep (its batches take the pooled connection: tests/integration/test_leaderboards.py),
so these run on the real Redis only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from leaderboards.script_batch import ScriptBatch, _Lane
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

ECHO = "return {KEYS[1], ARGV[1]}"


@pytest.fixture
async def plain(backend: str) -> AsyncIterator[Redis]:
    """A client of the real Redis with a short socket timeout (the server's is a few hundred ms)."""
    if backend != "postgres+redis":
        pytest.skip("a lane needs a socket: the real Redis")
    client = Redis.from_url(REDIS_URL, socket_timeout=0.3)
    yield client
    await client.aclose()


def fresh(redis: Redis) -> ScriptBatch:
    """A batch of a script Redis has never seen (a unique comment makes a new SHA): NOSCRIPT on first use."""
    return ScriptBatch(redis, redis.register_script(f"-- {uuid.uuid4().hex}\n{ECHO}"))


async def opened(batch: ScriptBatch) -> _Lane:
    """The batch's lane, opened now (not by a first batch)."""
    await batch._open()
    lane = batch._lane
    assert lane is not None and not lane.closed
    return lane


async def closed_soon(lane: _Lane) -> None:
    """Wait (up to half a second) for the lane's reader to see its connection gone."""
    for _ in range(50):
        if lane.closed:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the lane is still open")


async def test_replies_go_to_their_callers_in_order_and_errors_alone(plain):
    batch = fresh(plain)
    lane = await opened(batch)  # before the script is known: the lane's first replies are NOSCRIPT
    calls = [batch(keys=[f"k{n}"], args=[str(n)]) for n in range(50)]
    assert await asyncio.gather(*calls) == [[f"k{n}".encode(), str(n).encode()] for n in range(50)]
    assert batch._lane is lane  # NOSCRIPT loaded the script and ran the calls again: the lane stays
    wrong = ScriptBatch(plain, plain.register_script("return redis.call('INCR', KEYS[1])"))
    wrong_lane = await opened(wrong)
    key = f"lane-test-{uuid.uuid4().hex}"
    await plain.set(key, "not a number")
    try:
        results = await asyncio.gather(
            wrong(keys=[key], args=[]), wrong(keys=[f"{key}-ok"], args=[]), return_exceptions=True
        )
    finally:
        await plain.delete(key, f"{key}-ok")
    assert isinstance(results[0], ResponseError) and "not an integer" in str(results[0])
    assert results[1] == 1  # the error reply failed its own call only
    assert not wrong_lane.closed


async def test_a_cancelled_caller_leaves_the_others_their_replies(plain):
    batch = fresh(plain)
    await opened(batch)
    first = asyncio.ensure_future(batch(keys=["a"], args=["1"]))
    second = asyncio.ensure_future(batch(keys=["b"], args=["2"]))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == [b"b", b"2"]
    assert first.cancelled()
    assert await batch(keys=["c"], args=["3"]) == [b"c", b"3"]


async def test_a_stuck_connection_fails_the_calls_waiting_and_the_next_batch_recovers(plain):
    batch = fresh(plain)
    lane = await opened(batch)
    assert await batch(keys=["a"], args=["1"]) == [b"a", b"1"]
    admin = Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        await admin.execute_command("CLIENT", "PAUSE", "800", "ALL")  # Redis answers no one for 0.8 s
        with pytest.raises(RedisTimeoutError):
            await batch(keys=["b"], args=["2"])
        assert lane.closed
        await asyncio.sleep(0.8)
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await admin.aclose()
    assert await batch(keys=["c"], args=["3"]) == [b"c", b"3"]  # the pooled connection; a new lane opens
    await asyncio.sleep(0.05)
    assert batch._lane is not None and batch._lane is not lane
    assert await batch(keys=["d"], args=["4"]) == [b"d", b"4"]


async def test_a_connection_redis_drops_closes_the_lane_and_reads_go_on(plain):
    batch = fresh(plain)
    lane = await opened(batch)
    host, port = lane.connection._writer.get_extra_info("sockname")[:2]  # type: ignore[attr-defined]
    await plain.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
    await closed_soon(lane)
    assert await batch(keys=["x"], args=["1"]) == [b"x", b"1"]


async def test_closing_the_client_ends_the_lane(plain):
    batch = fresh(plain)
    lane = await opened(batch)
    await plain.connection_pool.disconnect()  # what closing the client does
    await closed_soon(lane)
    assert lane._task.done() and not lane._task.cancelled()  # ended on the closed connection
    assert isinstance(lane._error, RedisError)
    assert await batch(keys=["y"], args=["2"]) == [b"y", b"2"]  # the pool connects again
