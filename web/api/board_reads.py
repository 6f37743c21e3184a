"""The lane of ``GET /v1/leaderboards/{key}``, the read widgets and apps poll most: plain reads before the stack.

:class:`BoardReadLane` is the app's outermost HTTP handler (:func:`install`, inside ``Litestar.__call__``).
A plain read skips the router, the middleware stack, the guard, dependency injection, the signature
model and the response machinery: the query is parsed by one strict function, the key resolved through
the same cache, the page read by the same service call, encoded once with msgspec into one body, and
answered with one start message whose headers are computed once. What the middleware stack does to every
answer, the lane does too, through the same functions: the trace id bound to the log context
(:func:`web.tracing.trace_id_of`), the security headers (:func:`web.pages.security.api_headers`), the
HTTP metrics (:class:`web.http_metrics.HttpMetricsMiddleware`), the access log line
(:func:`web.logs.log_request`), the rate limit (:class:`web.ratelimit.Limiter`) and, for a request with an
``Origin``, Litestar's own CORS headers. Measured on the real server (two A/B pairs), the lane took a
fifth off the server's CPU per read.

The read takes the key's rate-limit token itself: the read script takes it from the bucket first, in the
same ``EVALSHA``, so a plain read costs one Redis round trip and a refused one reads nothing. A read
answered from SQL takes its token on its own (:func:`web.ratelimit.taken`).

Anything the lane is not sure of goes through the whole stack to the route unchanged: a parameter it does
not know, a repeated or empty one, a value out of the route's bounds, a NUL or an undecodable byte, a
missing, unknown or misplaced key, a path of more than one segment, any error the service raises, and
any exception before the answer started. The route then answers exactly as it would have (its problem
details included), with the token the lane may have taken already (:func:`web.ratelimit.hand_over`), so
the lane can only make a valid read faster, never change an answer. With OpenTelemetry tracing on, the
lane is not installed: every request then goes through the tracing middleware and gets its span.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
import structlog

# Litestar's own CORS headers (the public alias of its middleware is deprecated): tests/web/test_board_reads.py
# compares every header of the lane's answers with the stack's, Origin included, so a change there shows.
from litestar.enums import ScopeType
from litestar.middleware._internal.cors import CORSMiddleware

from engine.buckets import Refused
from engine.errors import QuestlineError
from engine.tenants import KeyKind
from leaderboards.service import MAX_AROUND, MAX_FRIENDS, MAX_LIMIT
from web.http_metrics import HttpMetricsMiddleware
from web.logs import log_request
from web.metrics import http_metrics
from web.pages.security import api_headers
from web.ratelimit import Deferred, Limiter, hand_over, presented_key, problem_of, scope_headers, taken
from web.tracing import trace_id_of

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send

    from engine.settings import Settings
    from engine.tenants import Principal
    from web.deps import Services

log = logging.getLogger("questline.leaderboards")
PREFIX = "/v1/leaderboards/"
"""The path the lane serves: this, then the board's key as one segment."""

_ENCODER = msgspec.json.Encoder()
TEXT_BOUNDS = {"period": 16, "around": 255, "members": 5_000, "scope": 100}
"""The ``max_length`` of each text parameter of the read (the route declares these too)."""
INT_BOUNDS = {"limit": (1, MAX_LIMIT), "offset": (0, 10_000_000), "k": (0, MAX_AROUND)}
"""The ``ge``/``le`` of each integer parameter of the read (the route declares these too)."""
_DIGITS = frozenset("0123456789")


class Read(msgspec.Struct, frozen=True, kw_only=True):
    """A plain read's arguments, as the route would have parsed them."""

    key: str
    presented: str
    """The API key as the route reads it (bearer, then ``X-Api-Key``, then ``?key=``)."""
    query_key: str | None = None
    period: str = "current"
    limit: int = 10
    offset: int = 0
    around: str | None = None
    k: int = 5
    members: tuple[str, ...] = ()
    scope: str | None = None


def plain_read(scope: Scope, headers: dict[str, str] | None = None) -> Read | None:
    """The read's arguments when the request is one the lane answers; ``None`` sends it to the route.

    ``headers``: :func:`web.ratelimit.scope_headers` of the request, when the caller has them already.
    """
    path = scope.get("path", "")
    if scope.get("method") != "GET" or not path.startswith(PREFIX) or scope.get("root_path"):
        return None
    key = path[len(PREFIX) :]
    if not key or "/" in key or "\x00" in key:
        return None
    raw = scope.get("query_string") or b""
    pairs = query_pairs(raw)
    if pairs is None:
        return None
    args: dict[str, Any] = {}
    for name, value in pairs:
        if name in args or not value or "\x00" in value:
            return None
        if name in INT_BOUNDS:
            low, high = INT_BOUNDS[name]
            if len(value) > 9 or not _DIGITS.issuperset(value) or not low <= int(value) <= high:
                return None
            args[name] = int(value)
        elif name in TEXT_BOUNDS:
            if len(value) > TEXT_BOUNDS[name]:
                return None
            args[name] = value
        elif name != "key":
            return None  # a parameter the lean path does not know: the route decides what it means
        else:
            args[name] = value
    if "members" in args:
        friends = tuple(m.strip() for m in args.pop("members").split(",") if m.strip())
        if len(friends) > MAX_FRIENDS:
            return None
        args["members"] = friends
    presented = presented_key(scope, headers)
    if presented is None:
        return None
    return Read(key=key, presented=presented, query_key=args.pop("key", None), **args)


def query_pairs(raw: bytes) -> list[tuple[str, str]] | None:
    """The query's (name, value) pairs as strict ``parse_qsl`` gives them; ``None`` where it would refuse.

    A query with nothing escaped (no ``%``, no ``+``: what apps and widgets send) is split without
    ``parse_qsl``'s decoding of each name and value, which was about a tenth of the lane's own work.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if "%" in text or "+" in text:
        try:
            return parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            return None
    if not text:
        return []
    pairs = []
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            return None  # a field without "=", or an empty one: parse_qsl's strict parsing refuses both
        pairs.append((name, value))
    return pairs


Answer = tuple[int, bytes, list[tuple[bytes, bytes]]]
"""A status, a body and its headers, ready to send."""


class BoardReadLane:
    """The app's outermost HTTP handler: answers a plain board read itself, hands anything else to ``app``."""

    def __init__(self, app: ASGIApp, *, litestar: Litestar, settings: Settings, template: str) -> None:
        self.app = app
        self._template = template
        self._fixed = api_headers(settings)
        self._metrics = HttpMetricsMiddleware(app, http_metrics())
        self._limiter = Limiter()
        self._cors = CORSMiddleware(app, litestar.cors_config) if litestar.cors_config is not None else None
        self._access = structlog.get_logger("questline.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain read in one start message and one body, or hand the request to the stack."""
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = scope_headers(scope)
        read = plain_read(scope, headers)
        services: Services | None = getattr(scope["app"].state, "services", None)
        if read is None or services is None:
            await self.app(scope, receive, send)
            return
        try:
            principal = await services.keys.resolve(read.presented)
        except Exception:  # an unknown key (401) or a failure: the route meets it too, and answers
            await self.app(scope, receive, send)
            return
        if principal.kind is KeyKind.SECRET and (read.query_key or "").strip() == read.presented:
            await self.app(scope, receive, send)  # a secret key in the URL: the route refuses it
            return
        deferred = self._limiter.deferred(services, principal)
        origin = headers.get("origin")
        reply = send
        if origin and self._cors is not None:
            reply = self._cors.send_wrapper(send, origin, has_cookie="cookie" in headers)
        bound = structlog.contextvars.bind_contextvars(trace_id=trace_id_of(scope))
        try:
            served = await self._serve(scope, reply, read, principal, services, deferred)
        finally:
            structlog.contextvars.reset_contextvars(**bound)
        if not served:
            hand_over(scope, deferred)
            await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, send: Send, read: Read, principal: Principal, services: Services, deferred: Deferred | None
    ) -> bool:
        """Answer the read, counted and logged; ``False`` when nothing was sent and the route should answer."""
        started = time.perf_counter()
        route = self._metrics.begin("GET", self._template)
        status = 0
        try:
            answer = await self._answer(read, principal, services, deferred)
            if answer is None:
                return False
            status, body, headers = answer
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            if status:
                self._metrics.end(route, status, time.perf_counter() - started)
                log_request(self._access, scope, status, started)
            else:
                self._metrics.abandon(route)
        return True

    async def _answer(
        self, read: Read, principal: Principal, services: Services, deferred: Deferred | None
    ) -> Answer | None:
        """The read's answer (200, or 429 from the bucket), or ``None`` for the route to answer."""
        try:
            page = await services.leaderboards.read(
                principal.brand,
                read.key,
                period=read.period,
                scope=read.scope,
                offset=read.offset,
                limit=read.limit,
                around=read.around,
                k=read.k,
                members=read.members,
                public=principal.kind is KeyKind.PUBLISHABLE,
                charge=None if deferred is None else deferred.charge,
            )
        except Refused:
            return self._refused(deferred)
        except QuestlineError:
            return None  # the route reads again and answers the problem
        except Exception as exc:  # the route meets it too, and answers as the stack does
            log.warning("board read lane: %r; the route answers", exc)
            return None
        if deferred is not None and not await taken(deferred):  # read from SQL: the token taken on its own
            return self._refused(deferred)
        body = _ENCODER.encode(page)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        verdict = None if deferred is None else deferred.verdict
        if verdict is not None:
            headers += verdict.raw_headers()
        return 200, body, headers + self._fixed

    def _refused(self, deferred: Deferred | None) -> Answer:
        verdict = None if deferred is None else deferred.verdict
        if verdict is None:  # only the request's own charge refuses
            raise RuntimeError("a read was refused without a charge")
        body, headers = problem_of(verdict)
        return 429, body, headers + self._fixed


def install(app: Litestar, settings: Settings) -> None:
    """Put :class:`BoardReadLane` in front of the app's stack (not with OpenTelemetry tracing on).

    Raises:
        RuntimeError: the lane's path is not the board read's route (the routes changed under it).
    """
    try:
        app.plugins.get("OpenTelemetryPlugin")
    except KeyError:
        pass
    else:
        return  # each request goes through the tracing middleware and gets its span
    *_, handler, _, _, template = app.asgi_router.handle_routing(path=PREFIX + "key", method="GET")
    if handler.handler_name != "read_board":
        raise RuntimeError(f"{PREFIX}{{key}} is routed to {handler.handler_name}, not the board read")
    app.asgi_handler = BoardReadLane(app.asgi_handler, litestar=app, settings=settings, template=template)
