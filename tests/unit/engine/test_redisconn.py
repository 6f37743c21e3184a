"""The Redis client's timeouts and circuit breaker, against a server that accepts and never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from engine.redisconn import breaker_of, create_redis_client
from engine.settings import load_settings


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening loopback socket that never accepts: connects complete, replies never come."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


async def test_a_silent_redis_costs_one_timeout_per_try_then_nothing_once_the_breaker_opens(silent_port: int) -> None:
    settings = load_settings(
        {},
        redis_url=f"redis://127.0.0.1:{silent_port}/0",
        redis_timeout_ms=150,
        redis_breaker_failures=2,
        redis_breaker_cooldown_s=30,
    )
    client = create_redis_client(settings)
    breaker = breaker_of(client)
    assert breaker is not None
    try:
        for _ in range(2):
            start = time.perf_counter()
            with pytest.raises(RedisError):
                await client.ping()
            took = time.perf_counter() - start
            assert took < 1.0, took  # one bounded wait, no retry with back-off
        assert breaker.state == "open"
        start = time.perf_counter()
        with pytest.raises(RedisConnectionError, match="circuit open"):
            await client.set("k", "v")
        assert time.perf_counter() - start < 0.05  # refused at once: no network wait at all
    finally:
        await client.aclose()


async def test_breaker_closes_when_redis_answers_again() -> None:
    from tests.conftest import REDIS_URL

    settings = load_settings({}, redis_url=REDIS_URL, redis_breaker_failures=1, redis_breaker_cooldown_s=0)
    client = create_redis_client(settings)
    breaker = breaker_of(client)
    assert breaker is not None
    try:
        try:
            await client.ping()
        except RedisError as exc:
            pytest.skip(f"Redis is not reachable ({exc!r})")
        breaker.failure()
        breaker.failure()
        assert breaker.state == "half_open"  # no cool-down: the next connect probes
        await client.connection_pool.disconnect()
        assert await client.ping()
        assert breaker.state == "closed"
    finally:
        await client.aclose()
