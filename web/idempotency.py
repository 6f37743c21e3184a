"""The ``Idempotency-Key`` header (IETF draft-ietf-httpapi-idempotency-key-header) on the JSON API's POSTs.

A pure ASGI middleware, independent of the rate limiter: for a ``POST`` or ``PATCH`` under ``/v1/`` that
carries the header and a valid key, the first request with a key runs and its response is stored for 24 h
(:mod:`integrations.idempotency`, in SQL). The same key with the same body answers the stored response with
``Idempotent-Replayed: true``; with another body 422; while the first is still running 409. A malformed key
answers 400. A response of 5xx or 429 is not stored (the transaction rolled back, so a retry is safe).
Keys are scoped by brand (the caller's API key), method and path.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import QuestlineError
from integrations import idempotency as store
from web.deps import Services
from web.errors import PROBLEM_BASE

HEADER = b"idempotency-key"
METHODS = frozenset({"POST", "PATCH"})
MAX_KEY = 255
#: Response headers kept with the stored response.
KEPT_HEADERS = frozenset({"content-type", "location", "cache-control"})


def parse_key(raw: str) -> str | None:
    """The key from the header value: an RFC 8941 sf-string (``"…"``) or a bare token; ``None`` if invalid."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 0 < len(value) <= MAX_KEY or any(not 0x20 <= ord(c) <= 0x7E for c in value):
        return None
    return value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _api_key(scope: Scope) -> str | None:
    authorization = _header(scope, b"authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = _header(scope, b"x-api-key")
    return api_key.strip() if api_key else None


async def _problem(send: Send, *, status: int, slug: str, title: str, detail: str) -> None:
    body = msgspec.json.encode(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail, "field": "Idempotency-Key"}
    )
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    await _respond(send, status=status, headers=headers, body=body)


async def _respond(send: Send, *, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: Any = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


async def _read_body(receive: Receive, *, limit: int) -> bytes | None:
    """The whole body, or ``None`` once it exceeds ``limit`` (or the client left)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


class IdempotencyMiddleware:
    """Replays, refuses or runs ``/v1/`` POSTs carrying an ``Idempotency-Key``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @classmethod
    def define(cls) -> DefineMiddleware:
        """The middleware as Litestar's ``middleware=[…]`` takes it."""
        return DefineMiddleware(cls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request under its key, or answer from the key's record."""
        raw = _header(scope, HEADER) if scope["type"] == ScopeType.HTTP else None
        if raw is None or scope.get("method") not in METHODS or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        key = parse_key(raw)
        if key is None:
            await _problem(
                send,
                status=400,
                slug="invalid-idempotency-key",
                title="Invalid Idempotency-Key",
                detail=f"an Idempotency-Key is 1 to {MAX_KEY} printable ASCII characters, optionally quoted",
            )
            return
        services: Services = Litestar.from_scope(scope).state.services
        principal = None
        api_key = _api_key(scope)
        if api_key:
            try:
                principal = await services.keys.resolve(api_key)
            except QuestlineError:
                principal = None
        if principal is None:  # the handler answers 401 itself
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, limit=services.settings.max_body_bytes)
        if body is None:
            await _problem(
                send, status=413, slug="payload-too-large", title="Payload too large", detail="the body is too large"
            )
            return
        replay = _replayer(body)
        query = scope.get("query_string", b"")
        path = str(scope["path"]) + ("?" + bytes(query).decode("latin-1") if query else "")
        method = str(scope.get("method"))
        scope_key = store.Scope(brand_id=principal.brand.id, key=key, method=method, path=path[:512])
        fingerprint = hashlib.sha256(body).hexdigest()
        claim = await store.claim(services.db, scope_key, fingerprint=fingerprint, now=services.clock.now())
        await self._answer(claim, scope, replay, send, services=services, scope_key=scope_key)

    async def _answer(
        self,
        claim: store.Claim,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        services: Services,
        scope_key: store.Scope,
    ) -> None:
        if isinstance(claim, store.Replay):
            headers = [(k.encode(), v.encode()) for k, v in claim.headers.items()]
            headers += [(b"idempotent-replayed", b"true"), (b"content-length", str(len(claim.body)).encode())]
            await _respond(send, status=claim.status, headers=headers, body=claim.body)
        elif isinstance(claim, store.Mismatch):
            await _problem(
                send,
                status=422,
                slug="idempotency-key-reused",
                title="Idempotency-Key reused",
                detail="this Idempotency-Key was used with a different request body",
            )
        elif isinstance(claim, store.InFlight):
            await _problem(
                send,
                status=409,
                slug="idempotency-key-in-flight",
                title="Request in progress",
                detail="a request with this Idempotency-Key is still being processed; retry later",
            )
        else:
            await self._run(scope, receive, send, services=services, scope_key=scope_key)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, *, services: Services, scope_key: store.Scope
    ) -> None:
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["status"] = int(message["status"])
                started["headers"] = {
                    bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
                    for k, v in message.get("headers", [])
                    if bytes(k).decode("latin-1").lower() in KEPT_HEADERS
                }
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await store.release(services.db, scope_key)
            raise
        status = started.get("status", 500)
        if status >= 500 or status == 429:
            await store.release(services.db, scope_key)
        else:
            await store.finish(services.db, scope_key, status=status, headers=started["headers"], body=b"".join(chunks))


def _replayer(body: bytes) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then waits for the disconnect."""
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    replay: Receive = receive
    return replay
