"""The Redis client every entry point uses: short timeouts, no retry back-off, and a circuit breaker.

redis-py's defaults (no connect timeout, three retries with exponential back-off) made each request
wait 5–28 s while Redis was down. Here every connection has a short connect and socket timeout, a
command is not retried, and connecting goes through a :class:`~engine.breaker.CircuitBreaker`: after a
few refused or timed-out connects in a row, every command fails at once (``ConnectionError``, no network
wait) until the cool-down ends and one connect probes Redis again. Callers treat Redis as derived state:
they catch :class:`redis.exceptions.RedisError` and carry on (see ``docs/operations.md``, Outages).

``redis+cluster://host:port,host:port`` (``rediss+cluster://`` for TLS) opens redis-py's asyncio
:class:`~redis.asyncio.cluster.RedisCluster` on those seed nodes instead: the same timeouts and breaker on
every node's connections, and the cluster client's own redirection handling (``MOVED``/``ASK``, a new
slot map after a replica is promoted). Every multi-key command and script of Questline stays inside one
hash slot (see :mod:`leaderboards.keys`), so a cluster serves them as a single Redis does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from engine.breaker import CircuitBreaker

if TYPE_CHECKING:
    from collections.abc import Sequence

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


CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://host:port,host:port``)."""
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The seed nodes and client options of a ``redis+cluster://[user:password@]host:port,host:port`` URL.

    Raises:
        ValueError: not a cluster URL, or a node without a port.
    """
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise ValueError(f"not a Redis Cluster URL: {url!r}")
    userinfo, _at, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {"ssl": parts.scheme == "rediss+cluster"}
    if userinfo:
        user, _colon, password = userinfo.partition(":")
        options["username"] = unquote(user) or None
        options["password"] = unquote(password) or None
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _colon, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis Cluster node needs host:port, got {item!r}")
        nodes.append((host.strip("[]"), int(port)))
    for name, values in parse_qs(parts.query).items():
        if name == "read_from_replicas":
            options[name] = values[-1].lower() in ("1", "true", "yes")
    return nodes, options


class Cluster(RedisCluster):
    """redis-py's asyncio cluster client, plus a plain client per master for ``MULTI``/``WATCH`` transactions.

    redis-py's cluster pipeline runs a transaction's ``WATCH``-phase commands through a worker thread
    that blocks the event loop and drops a coroutine on some paths; a transaction that stays in one slot
    (all Questline's do) is simply a transaction on the master owning that slot, so it goes through a
    plain :class:`~redis.asyncio.Redis` on that master (same timeouts and breaker). A failover or a moved
    slot makes it fail like a lost connection; the cluster client's next command refreshes the map.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._masters: dict[str, Redis] = {}

    async def master_for(self, key: str) -> Redis:
        """A plain client on the master serving ``key``'s slot (as the cluster client last saw the map)."""
        if self._initialize:  # no map yet: the first command of the client
            await self.initialize()
        node = self.nodes_manager.get_node_from_slot(self.keyslot(key))
        client = self._masters.get(node.name)
        if client is None:
            options = self.nodes_manager.connection_kwargs
            pool = ConnectionPool(
                **{k: v for k, v in options.items() if k in _PLAIN_OPTIONS},
                host=node.host,
                port=node.port,
                retry=Retry(NoBackoff(), 0),
            )
            client = self._masters[node.name] = Redis.from_pool(pool)
        return client

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        """Close the cluster client and the masters' plain clients."""
        masters, self._masters = list(self._masters.values()), {}
        for client in masters:
            await client.aclose()
        await super().aclose(*args, **kwargs)


_PLAIN_OPTIONS = frozenset(
    {
        "connection_class",
        "breaker",
        "username",
        "password",
        "socket_timeout",
        "socket_connect_timeout",
        "health_check_interval",
        "decode_responses",
    }
)


async def transaction_client(redis: Redis, key: str) -> Redis:
    """The client for a ``MULTI``/``WATCH`` transaction on ``key``'s slot.

    ``redis`` itself, or on a cluster a plain client of the slot's master (:class:`Cluster`).
    """
    if isinstance(redis, Cluster):
        return await redis.master_for(key)
    return redis


def _create_cluster_client(settings: Settings, breaker: CircuitBreaker, timeout: float) -> Redis:
    nodes, options = cluster_nodes(settings.redis_url)
    guarded = _guarded_class(SSLConnection if options.get("ssl") else Connection)
    cluster = Cluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=0,
        decode_responses=False,
        **options,
    )
    # Every node's connections (the seeds', and those found later) ask the breaker before connecting.
    cluster.nodes_manager.connection_kwargs.update(connection_class=guarded, breaker=breaker)
    for node in cluster.nodes_manager.startup_nodes.values():
        node.connection_class = cast("type[Connection]", guarded)
        node.connection_kwargs["breaker"] = breaker
    # The cluster client speaks the same commands as the single-node one (Questline keeps every
    # multi-key command in one slot); callers are typed against the single-node client.
    return cast("Redis", cluster)


def create_redis_client(settings: Settings, breaker: CircuitBreaker | None = None) -> Redis:
    """A redis-py asyncio client on ``settings.redis_url`` with the timeouts and breaker of the settings.

    A ``redis+cluster://`` URL gives a :class:`~redis.asyncio.cluster.RedisCluster` (module docstring).
    """
    timeout = settings.redis_timeout_ms / 1000
    breaker = breaker or CircuitBreaker(
        name="redis", failures=settings.redis_breaker_failures, cooldown=settings.redis_breaker_cooldown_s
    )
    if is_cluster_url(settings.redis_url):
        return _create_cluster_client(settings, breaker, timeout)
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
    if isinstance(redis, RedisCluster):
        kwargs: Any = redis.nodes_manager.connection_kwargs
    else:
        kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", None)
    found = kwargs.get("breaker") if isinstance(kwargs, dict) else None
    return found if isinstance(found, CircuitBreaker) else None


def is_cluster(redis: Any) -> bool:
    """Whether ``redis`` is a Redis Cluster client."""
    return isinstance(redis, RedisCluster)


def queue_publish(pipe: Any, redis: Any, channel: str, payload: bytes) -> None:
    """Queue a message on ``pipe``: ``PUBLISH``, or on a cluster ``SPUBLISH`` (sharded pub/sub).

    A cluster broadcasts a classic ``PUBLISH`` to every node over its bus (and redis-py refuses it in a
    cluster pipeline); ``SPUBLISH`` goes to the shard that owns the channel's slot only, where
    :func:`web.pages.live.updates` listens with ``SSUBSCRIBE``.
    """
    publish_on(pipe, redis)(channel, payload)


def publish_on(pipe: Any, redis: Any) -> Any:
    """``pipe``'s ``publish`` (``spublish`` on a cluster), looked up once for many messages."""
    return pipe.spublish if is_cluster(redis) else pipe.publish


FAN_OUT_SCRIPT = "for i = 2, #ARGV do redis.call('PUBLISH', ARGV[i], ARGV[1]) end return #ARGV - 1"
"""Publish ``ARGV[1]`` on every channel ``ARGV[2..]``: one command and one reply for many channels."""
FAN_OUT_AT = 8
"""From this many channels with the same message, :func:`queue_messages` sends one script instead."""


def queue_messages(pipe: Any, redis: Any, messages: Sequence[tuple[str, bytes]]) -> None:
    """Queue ``(channel, payload)`` messages on ``pipe``, one command per payload shared by many channels.

    A unit of work announces the same tiny "something changed" payload on every touched member's
    channel: a 1000-event batch is hundreds of PUBLISHes whose packing and replies cost more client CPU
    than the unit's SQL. On a single Redis, a payload sent to :data:`FAN_OUT_AT` channels or more goes as
    one ``EVAL`` of :data:`FAN_OUT_SCRIPT` (the text, so a pipeline needs no ``SCRIPT LOAD`` round trip;
    Redis caches it) at the place of its first message; other messages keep their order. A cluster keeps
    one ``SPUBLISH`` per message: a script cannot reach channels of other shards.
    """
    publish = publish_on(pipe, redis)
    if is_cluster(redis):
        for channel, payload in messages:
            publish(channel, payload)
        return
    shared: dict[bytes, list[str]] = {}
    for channel, payload in messages:
        shared.setdefault(payload, []).append(channel)
    sent: set[bytes] = set()
    for channel, payload in messages:
        channels = shared[payload]
        if len(channels) < FAN_OUT_AT:
            publish(channel, payload)
        elif payload not in sent:
            sent.add(payload)
            pipe.eval(FAN_OUT_SCRIPT, 0, payload, *channels)
