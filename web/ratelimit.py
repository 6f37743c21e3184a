"""API rate limiting per key: a token bucket in Redis, taken atomically by one Lua script.

Every ``/v1/…`` request that presents a key (``Authorization: Bearer``, ``X-Api-Key`` or ``?key=``) takes
one token from that key's bucket (``engine.keys.rate_limit_bucket``). A bucket holds ``burst`` tokens and
refills at ``rate`` tokens per second: the brand's ``rate_limit`` setting (``{"rate": …, "burst": …}``) or
the deployment default (``QUESTLINE_RATE_LIMIT``, ``QUESTLINE_RATE_LIMIT_BURST``); a rate of 0 turns it off.

Answers carry the IETF fields of draft-ietf-httpapi-ratelimit-headers-09 (structured fields)::

    RateLimit-Policy: "api";q=1000;w=10       quota q requests per window w seconds (burst / rate)
    RateLimit: "api";r=998;t=1                 r requests remaining; t seconds until the bucket is full

An empty bucket answers ``429`` problem+json with ``Retry-After`` (seconds until one token is back).
A read that goes to Redis anyway may take the token in its own script (:class:`Deferred`): the board
read's lane does, so a plain read costs one round trip, not two.
When Redis does not answer, requests are let through (fail open) and the failure is logged: the limit
protects capacity, it is not an authorisation check.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from redis.exceptions import NoScriptError

from engine import keys
from engine.breaker import CircuitBreaker
from engine.buckets import TAKE_SCRIPT, Charge
from engine.errors import AuthenticationError
from engine.redisconn import breaker_of, is_cluster
from web.errors import PROBLEM_BASE

if TYPE_CHECKING:
    from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send
    from redis.asyncio import Redis

    from engine.settings import Settings
    from engine.tenants import Brand, Principal
    from web.deps import Services

log = logging.getLogger("questline.ratelimit")

POLICY = "api"


class Limit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A key's bucket: ``burst`` tokens, refilled at ``rate`` per second (0: unlimited)."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """One request's outcome and what the headers say."""

    allowed: bool
    limit: Limit
    remaining: float

    def headers(self) -> dict[str, str]:
        """``RateLimit-Policy`` and ``RateLimit`` (and ``Retry-After`` when refused)."""
        rate, burst = self.limit.rate, self.limit.burst
        window = max(1, math.ceil(burst / rate))
        until_full = max(0, math.ceil((burst - self.remaining) / rate))
        found = {
            "RateLimit-Policy": f'"{POLICY}";q={burst};w={window}',
            "RateLimit": f'"{POLICY}";r={max(0, math.floor(self.remaining))};t={until_full}',
        }
        if not self.allowed:
            found["Retry-After"] = str(max(1, math.ceil((1 - self.remaining) / rate)))
        return found

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` as an ASGI message carries them."""
        return [(name.lower().encode(), value.encode()) for name, value in self.headers().items()]


def limit_for(settings: Settings, brand: Brand) -> Limit:
    """The brand's own limit (``settings.rate_limit``) or the deployment default."""
    default = Limit(rate=settings.rate_limit, burst=settings.rate_limit_burst)
    custom = brand.settings.get("rate_limit")
    if not isinstance(custom, dict):
        return default
    try:
        return msgspec.convert({"rate": default.rate, "burst": default.burst, **custom}, Limit, strict=False)
    except msgspec.ValidationError:
        log.warning("brand %s has an invalid rate_limit setting; the default applies", brand.id)
        return default


class TokenBuckets:
    """Takes tokens from per-key buckets in Redis (one atomic script call per request).

    Requests that ask in the same turn of the event loop share one round trip: their script calls go out
    as one pipeline (on a Redis Cluster, where the buckets live on different shards, each goes alone).
    """

    def __init__(self, redis: Redis, *, namespace: str) -> None:
        self._namespace = namespace
        self._redis = redis
        self._take = redis.register_script(TAKE_SCRIPT)
        self._together = not is_cluster(redis)
        self._queued: list[tuple[str, Limit, asyncio.Future[Any]]] = []

    def bucket(self, brand_id: int, key_id: int) -> str:
        """The Redis key of an API key's bucket."""
        return keys.rate_limit_bucket(self._namespace, brand_id, key_id)

    async def take(self, brand_id: int, key_id: int, limit: Limit) -> Verdict:
        """Take one token from the key's bucket.

        Raises:
            redis.RedisError: Redis did not answer (the caller fails open).
        """
        return await self.take_from(self.bucket(brand_id, key_id), limit)

    async def take_from(self, bucket: str, limit: Limit) -> Verdict:
        """Take one token from ``bucket`` (see :meth:`take`)."""
        if not self._together:
            allowed, tokens = await self._take(keys=[bucket], args=[limit.rate, limit.burst, 1])
        else:
            answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queued.append((bucket, limit, answer))
            if len(self._queued) == 1:  # the first of this turn sends them all once the turn ends
                asyncio.get_running_loop().call_soon(self._send_queued)
            allowed, tokens = await answer
        return Verdict(allowed=int(allowed) == 1, limit=limit, remaining=float(tokens))

    def _send_queued(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(queued))
        _SENDING.add(task)
        task.add_done_callback(_SENDING.discard)

    async def _send(self, queued: list[tuple[str, Limit, asyncio.Future[Any]]]) -> None:
        try:
            if len(queued) == 1:
                bucket, limit, _ = queued[0]
                answers: list[Any] = [await self._take(keys=[bucket], args=[limit.rate, limit.burst, 1])]
            else:
                answers = await self._pipelined(queued)
        except Exception as exc:
            for *_, answer in queued:
                if not answer.done():
                    answer.set_exception(exc)
            return
        for (*_, answer), found in zip(queued, answers, strict=True):
            if answer.done():
                continue
            if isinstance(found, Exception):
                answer.set_exception(found)
            else:
                answer.set_result(found)

    async def _pipelined(self, queued: list[tuple[str, Limit, asyncio.Future[Any]]]) -> list[Any]:
        answers: list[Any] = []
        for _attempt in range(2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for bucket, limit, _ in queued:
                    pipe.evalsha(self._take.sha, 1, bucket, limit.rate, limit.burst, 1)
                answers = await pipe.execute(raise_on_error=False)
            if not any(isinstance(a, NoScriptError) for a in answers):
                return answers
            await self._redis.script_load(TAKE_SCRIPT)  # a restarted or flushed Redis forgot the script
        return answers


_SENDING: set[asyncio.Task[None]] = set()
"""Bucket takes on their way (a task must be referenced until it ends)."""


def scope_headers(scope: Scope) -> dict[str, str]:
    """A raw ASGI request's headers by lower-case name (the last of a repeated one)."""
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def presented_key(scope: Scope, headers: dict[str, str] | None = None) -> str | None:
    """The API key of a raw ASGI request, in :func:`web.deps.provide_principal`'s order.

    ``Authorization: Bearer``, then ``X-Api-Key``, then ``?key=`` (not percent-decoded: a key needs no
    escaping, and one sent escaped fails to resolve here and is left to the route, which decodes it).
    ``headers``: :func:`scope_headers` of the request, when the caller has them already.
    """
    if headers is None:
        headers = scope_headers(scope)
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if headers.get("x-api-key", "").strip():
        return headers["x-api-key"].strip()
    for pair in (scope.get("query_string") or b"").decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if name == "key" and value:
            return value.strip()
    return None


def problem_of(verdict: Verdict) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The ``429`` problem+json of a refusal: its body, and its headers with the bucket's."""
    body = msgspec.json.encode(
        {
            "type": PROBLEM_BASE + "rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": f"this key may send {verdict.limit.burst} requests at once and "
            f"{verdict.limit.rate:g} per second after that; retry after the Retry-After seconds",
        }
    )
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += verdict.raw_headers()
    return body, headers


_DEFERRED = "questline.rate_limit"


@dataclass(slots=True)
class Deferred:
    """A request's token, not taken yet: a read script may take it in its own Redis call (one round trip).

    The board-read lane (:mod:`web.api.board_reads`) passes :attr:`charge` to a script that takes the
    token before reading (:data:`engine.buckets.TAKE_FUNCTION`); anything else calls :func:`settle`, which
    takes it on its own unless that already happened. Either way every request costs one token.
    """

    charge: Charge
    limit: Limit
    buckets: TokenBuckets
    failed_open: bool = False

    @property
    def verdict(self) -> Verdict | None:
        """The bucket's answer, once the token was taken."""
        if self.charge.allowed is None:
            return None
        return Verdict(allowed=self.charge.allowed, limit=self.limit, remaining=self.charge.remaining)

    @property
    def settled(self) -> bool:
        """Whether the token was taken (or Redis failed and the request was let through)."""
        return self.failed_open or self.charge.allowed is not None


def deferred_of(scope: Scope) -> Deferred | None:
    """The token a request brings along (the board-read lane's, when it hands a read to the route)."""
    found = cast("dict[str, Any]", scope).get(_DEFERRED)
    return found if isinstance(found, Deferred) else None


def hand_over(scope: Scope, deferred: Deferred | None) -> None:
    """Leave ``deferred`` in the request's scope, so the middleware charges that token and no second one."""
    if deferred is not None:
        cast("dict[str, Any]", scope)[_DEFERRED] = deferred


async def taken(deferred: Deferred) -> bool:
    """Take the token if nothing took it yet; whether the request may go on (``False``: refused)."""
    if not deferred.settled:
        try:
            verdict = await deferred.buckets.take_from(deferred.charge.bucket, deferred.limit)
        except Exception as exc:  # any Redis failure: the limit is a guard, not a dependency
            log.warning("rate limit not applied: Redis did not answer (failing open): %r", exc)
            deferred.failed_open = True
            return True
        deferred.charge.allowed, deferred.charge.remaining = verdict.allowed, verdict.remaining
    return deferred.failed_open or bool(deferred.charge.allowed)


async def settle(deferred: Deferred, send: Send) -> bool:
    """Take the token if nothing took it yet; ``False`` when refused (the 429 was sent)."""
    if await taken(deferred):
        return True
    verdict = deferred.verdict
    assert verdict is not None  # a refusal is the bucket's answer
    await refuse(verdict, send)
    return False


async def refuse(verdict: Verdict, send: Send) -> None:
    """Answer ``429`` problem+json with the bucket's headers."""
    body, headers = problem_of(verdict)
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 429, "headers": headers}
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


def _with_headers(send: Send, deferred: Deferred) -> Send:
    """``send`` adding the verdict's headers (when there is one) to the start of the answer."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and (verdict := deferred.verdict) is not None:
            headers = MutableScopeHeaders.from_message(message)
            for name, value in verdict.headers().items():
                headers[name] = value
        await send(message)

    return sending


class Limiter:
    """How a worker finds a request's bucket and limit (the middleware's and the board-read lane's)."""

    def __init__(self) -> None:
        self._redis: Any = None
        self._buckets: TokenBuckets | None = None
        self._breaker: CircuitBreaker | None = None

    def deferred(self, services: Services, principal: Principal) -> Deferred | None:
        """The key's token to take, or ``None`` when no limit applies (or Redis is known to be down)."""
        limit = limit_for(services.settings, principal.brand)
        if limit.rate <= 0:
            return None
        if self._buckets is None or self._redis is not services.redis:  # the services of this app's lifespan
            self._redis = services.redis
            self._buckets = TokenBuckets(services.redis, namespace=services.settings.redis_namespace)
            self._breaker = breaker_of(services.redis)
        if self._breaker is not None and self._breaker.is_open:
            return None  # Redis is known to be down: fail open at once instead of waiting on it
        bucket = self._buckets.bucket(principal.brand.id, principal.key_id)
        return Deferred(Charge(bucket, limit.rate, limit.burst), limit, self._buckets)


class RateLimitMiddleware:
    """Applies the per-key token bucket to ``/v1/…`` requests that present a key.

    A request the board-read lane hands over brings its token along (:func:`hand_over`): that one is
    charged, perhaps already taken by the lane's read script, never a second.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._limiter = Limiter()

    @classmethod
    def define(cls) -> DefineMiddleware:
        """The middleware as Litestar's ``middleware=[…]`` takes it."""
        return DefineMiddleware(cls)

    async def _deferred(self, scope: Scope) -> Deferred | None:
        """The request's token, or ``None`` when no limit applies."""
        if scope["type"] != ScopeType.HTTP or not str(scope.get("path", "")).startswith("/v1/"):
            return None
        presented = presented_key(scope)
        services: Services | None = getattr(scope["app"].state, "services", None)
        if not presented or services is None:
            return None
        try:
            principal = await services.keys.resolve(presented)
        except AuthenticationError:
            return None  # the handler answers 401
        return self._limiter.deferred(services, principal)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse with 429 when the key's bucket is empty; else add the headers to the answer."""
        deferred = deferred_of(scope) or await self._deferred(scope)
        if deferred is None:
            await self.app(scope, receive, send)
        elif await settle(deferred, send):
            await self.app(scope, receive, _with_headers(send, deferred))


def expose_headers() -> list[str]:
    """The headers browsers may read from cross-origin API answers."""
    return ["RateLimit-Policy", "RateLimit", "Retry-After"]
