"""The Redis client every entry point uses: short timeouts, no retry back-off, and a circuit breaker.

redis-py's defaults (no connect timeout, three retries with exponential back-off) made each request
wait 5–28 s while Redis was down. Here every connection has a short connect and socket timeout, a
command is not retried, and connecting goes through a :class:`~engine.breaker.CircuitBreaker`: after a
few refused or timed-out connects in a row, every command fails at once (``ConnectionError``, no network
wait) until the cool-down ends and one connect probes Redis again. Callers treat Redis as derived state:
they catch :class:`redis.exceptions.RedisError` and carry on (see ``docs/operations.md``, Outages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection, Connection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.breaker import CircuitBreaker

if TYPE_CHECKING:
    from engine.settings import Settings


class _Guarded:
    """Mixin for a redis-py connection class: connecting asks the breaker first and reports to it."""

    _breaker: CircuitBreaker

    def __init__(self, *args: Any, breaker: CircuitBreaker, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._breaker = breaker

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Connect unless connected; refused at once while the breaker is open."""
        base = cast("Any", super())
        if self.is_connected:  # type: ignore[attr-defined]
            return
        breaker = self._breaker
        if not breaker.allow():
            raise RedisConnectionError(
                f"Redis is unavailable (circuit open, next probe in {breaker.retry_after():.1f}s)"
            )
        try:
            await base.connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            breaker.failure()
            raise
        breaker.success()


_GUARDED: dict[type[Any], type[AbstractConnection]] = {}


def _guarded_class(base: type[Any]) -> type[AbstractConnection]:
    found = _GUARDED.get(base)
    if found is None:
        found = cast("type[AbstractConnection]", type(f"Guarded{base.__name__}", (_Guarded, base), {}))
        _GUARDED[base] = found
    return found


def create_redis_client(settings: Settings, breaker: CircuitBreaker | None = None) -> Redis:
    """A redis-py asyncio client on ``settings.redis_url`` with the timeouts and breaker of the settings."""
    timeout = settings.redis_timeout_ms / 1000
    breaker = breaker or CircuitBreaker(
        name="redis", failures=settings.redis_breaker_failures, cooldown=settings.redis_breaker_cooldown_s
    )
    base = parse_url(settings.redis_url).get("connection_class", Connection)
    pool = ConnectionPool.from_url(
        settings.redis_url,
        connection_class=_guarded_class(base),
        breaker=breaker,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        decode_responses=False,
    )
    return Redis.from_pool(pool)  # the client owns the pool: closing it closes the connections


def breaker_of(redis: Redis) -> CircuitBreaker | None:
    """The breaker guarding ``redis``'s connections, if it was made by :func:`create_redis_client`."""
    pool = getattr(redis, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    found = kwargs.get("breaker") if isinstance(kwargs, dict) else None
    return found if isinstance(found, CircuitBreaker) else None
