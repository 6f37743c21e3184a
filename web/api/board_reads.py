"""The lean path of ``GET /v1/leaderboards/{key}``, the read widgets and apps poll most.

:class:`LeanBoardRead` is the route's own middleware: it runs inside every app-level middleware (trace
id, access log, security headers, HTTP metrics, rate limit, CORS), so the request is logged, counted,
limited and answered with the same headers as any other, but it answers a plain read itself, without
the route's guard, dependency injection, signature model and response machinery: the query is parsed by
one strict function, the key resolved through the same cache, the page read by the same service call and
encoded once with msgspec into one body.

The route takes the key's rate-limit token itself (:data:`web.ratelimit.FUSED`): the read script takes it
from the bucket first, in the same ``EVALSHA``, so a plain read costs one Redis round trip and a refused one
reads nothing. Whatever else it answers, and before it hands a request to the route, it takes the token on
its own (:func:`web.ratelimit.settle`), as the rate-limit middleware would have.

Anything it is not sure of goes to the route unchanged: a parameter it does not know, a repeated or
empty one, a value out of the route's bounds, a NUL or an undecodable byte, a missing, unknown or
misplaced key, and every error the service raises. The route then answers exactly as it would have (its
problem details included), so the lean path can only make a valid read faster, never change an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec

from engine.buckets import Refused
from engine.errors import AuthenticationError, QuestlineError
from engine.tenants import KeyKind
from leaderboards.service import MAX_AROUND, MAX_FRIENDS, MAX_LIMIT
from web.ratelimit import deferred_of, presented_key, refuse, settle

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from web.deps import Services

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


def plain_read(scope: Scope) -> Read | None:
    """The read's arguments when the request is one the lean path answers; ``None`` sends it to the route."""
    if scope.get("method") != "GET":
        return None
    key = scope.get("path_params", {}).get("key")
    if not isinstance(key, str) or not key or "\x00" in key:
        return None
    raw = scope.get("query_string") or b""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=bool(raw), errors="strict")
    except (UnicodeDecodeError, ValueError):
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
    presented = presented_key(scope)
    if presented is None:
        return None
    return Read(key=key, presented=presented, query_key=args.pop("key", None), **args)


class LeanBoardRead:
    """Route middleware of the board read: answers a plain read itself, hands anything else to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a plain read in one body, or run the route."""
        read = plain_read(scope)
        services: Services | None = getattr(scope["app"].state, "services", None)
        if read is None or services is None:
            await self._route(scope, receive, send)
            return
        try:
            principal = await services.keys.resolve(read.presented)
        except AuthenticationError:
            await self._route(scope, receive, send)  # the route answers 401
            return
        if principal.kind is KeyKind.SECRET and (read.query_key or "").strip() == read.presented:
            await self._route(scope, receive, send)  # a secret key in the URL: the route refuses it
            return
        deferred = deferred_of(scope)
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
            verdict = None if deferred is None else deferred.verdict
            if verdict is None:  # only the request's own charge refuses
                raise
            await refuse(verdict, send)
            return
        except QuestlineError:
            await self._route(scope, receive, send)  # the route reads again and answers the problem
            return
        if not await settle(scope, send):  # read from SQL: the token is taken on its own
            return
        body = _ENCODER.encode(page)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the route, once the request's token is taken (a refused one is answered 429 here)."""
        if await settle(scope, send):
            await self.app(scope, receive, send)
