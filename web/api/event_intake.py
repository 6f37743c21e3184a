"""The lean path of ``POST /v1/events``, the call point-of-sale and app integrations make most.

:class:`LeanEventIntake` is the route's own middleware: it runs inside every app-level middleware (trace
id, access log, security headers, HTTP metrics, refused events, rate limit, idempotency, CORS), so the
request is logged, counted, limited, replayed for a repeated ``Idempotency-Key`` and answered with the
same headers as any other. It answers a plain JSON request itself, without the route's guard, dependency
injection, signature model and response machinery: the body is read once, the key resolved through the
same cache, the events decoded and checked by the same functions, processed by the same coalescer, and the
answer encoded once into one body.

Anything it is not sure of goes to the route unchanged, with the body it read handed on: a query string,
a media type other than plain JSON (CloudEvents, forms, none), a key not in a header, an unknown, revoked
or publishable key, a body over the size limit, and every decoding or plausibility error. The route then
answers exactly as it would have (its problem details included). Once the events are valid, an error of
the pipeline itself propagates to the route's exception handling, which answers it as the route would.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from litestar.serialization import encode_json

from engine.coalesce import Coalescer
from engine.effects import AnyEffect, BoardTotalChanged, Notification
from engine.errors import AuthenticationError, QuestlineError
from engine.events import check_plausible, decode_events, max_event_age
from engine.tenants import KeyKind
from integrations import cloudevents
from web.hygiene import is_json_content_type
from web.ratelimit import presented_key, scope_headers
from web.schemas.events import BatchResultOut, EventResultOut

if TYPE_CHECKING:
    from litestar.datastructures import State
    from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

    from engine.events import Event
    from engine.pipeline import EventResult
    from engine.tenants import Brand
    from web.deps import Services

_INTERNAL = (BoardTotalChanged, Notification)
_HEADERS = [(b"content-type", b"application/json")]


def replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` first (what the lean path read), then the client's own."""
    pending = list(messages)

    async def again() -> ReceiveMessage:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


async def read_body(receive: Receive, limit: int) -> tuple[bytes | None, list[ReceiveMessage]]:
    """The whole body, or ``None`` when it is over ``limit`` or the client left; with the messages read."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages  # a disconnect: the route sees it too
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, messages  # the route answers 413
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def to_out(result: EventResult) -> EventResultOut:
    """Keep the effects an app can act on (internal bookkeeping effects are left out)."""
    return EventResultOut(
        id=result.id,
        member=result.member,
        duplicate=result.duplicate,
        effects=[cast("AnyEffect", e) for e in result.effects if not isinstance(e, _INTERNAL)],
        held=result.held,
    )


def plausible(services: Services, brand: Brand, events: list[Event], *, is_batch: bool) -> None:
    """Refuse events dated outside the brand's plausibility window (:func:`engine.events.check_plausible`)."""
    settings = services.settings
    check_plausible(
        events,
        now=services.clock.now(),
        max_future=timedelta(seconds=settings.event_max_future_seconds),
        max_age=max_event_age(brand.settings, settings.event_max_age_days),
        is_batch=is_batch,
    )


def coalescer_of(state: State, services: Services) -> Coalescer:
    """This worker's coalescer of single events (kept in the app's state, built on first use)."""
    found: Coalescer | None = state.get("event_coalescer")
    if found is None or found.pipeline is not services.pipeline:
        settings = services.settings
        found = Coalescer(
            services.pipeline,
            window=settings.coalesce_ms / 1000,
            max_events=settings.max_batch,
            inflight=settings.coalesce_inflight,
        )
        state["event_coalescer"] = found
    return found


class LeanEventIntake:
    """Route middleware of event ingestion: answers a plain JSON request itself, hands anything else to the route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Process a plain request of one event or a batch, or run the route."""
        services: Services | None = getattr(scope["app"].state, "services", None)
        headers = scope_headers(scope)
        content_type = headers.get("content-type", "")
        key = presented_key(scope, headers)  # no query string on this path: a header's key, as the route reads it
        if (
            services is None
            or scope.get("method") != "POST"
            or scope.get("query_string")
            or key is None
            or not is_json_content_type(content_type)
            or cloudevents.is_cloudevents(content_type, headers)
        ):
            await self.app(scope, receive, send)
            return
        settings = services.settings
        declared = headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > settings.max_body_bytes:
            await self.app(scope, receive, send)  # streamed or too large: the route's body reader decides
            return
        body, messages = await read_body(receive, settings.max_body_bytes)
        events = None if body is None else await self._events(services, key, body)
        if events is None:
            await self.app(scope, replaying(messages, receive), send)
            return
        brand, batch, is_batch = events
        results = await coalescer_of(scope["app"].state, services).process(brand, batch)
        outs = [to_out(r) for r in results]
        payload = encode_json(BatchResultOut(results=outs) if is_batch else outs[0])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    @staticmethod
    async def _events(services: Services, key: str, body: bytes) -> tuple[Any, list[Event], bool] | None:
        """The brand and its validated events, or ``None`` when the route should answer."""
        try:
            principal = await services.keys.resolve(key)
        except AuthenticationError:
            return None  # the route answers 401
        if principal.kind is not KeyKind.SECRET:
            return None  # the route answers 403
        try:
            events, is_batch = decode_events(body, max_batch=services.settings.max_batch)
            plausible(services, principal.brand, events, is_batch=is_batch)
        except QuestlineError:
            return None  # the route decodes again and answers the problem, naming the field
        return principal.brand, events, is_batch
