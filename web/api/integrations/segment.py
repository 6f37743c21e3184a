"""The Segment mount: ``/segment/v1/{track,identify,batch}`` as Segment's libraries send them.

Point a Segment server library's ``host`` at ``https://<questline>/segment`` and use a Questline secret key
as the write key (HTTP Basic username with an empty password, or ``writeKey`` in the body as the current
Python library sends it). The key is read after the body is decoded, so bad JSON answers 422 before 401. Bodies may be gzip-compressed. The answer is
Segment's ``{"success": true}``; bad input answers a 4xx problem and nothing of the request is applied.
``/segment/v1/webhook`` takes Segment's webhook destination (one message of any type per POST; the key as
Basic auth or ``Authorization: Bearer``).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import RawBody

from engine import members as members_repo
from engine.errors import AuthenticationError, PayloadTooLarge, PermissionDenied, QuestlineError, ValidationError
from engine.events import Event
from engine.members import MemberIn
from engine.tenants import KeyKind, Principal
from integrations import segment, store
from integrations.models import SEGMENT_DEFAULTS, merged
from web.deps import Services, ServicesDep
from web.errors import PROBLEM_BASE
from web.schemas.integrations import SegmentOk


def inflate(body: bytes, *, encoding: str, limit: int) -> bytes:
    """The body decompressed when ``Content-Encoding: gzip``, refusing more than ``limit`` bytes (gzip bombs).

    Raises:
        PayloadTooLarge: it inflates past ``limit``.
        ValidationError: another encoding, or a corrupt gzip stream.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ValidationError(f"unsupported Content-Encoding {encoding!r} (gzip or none)", field="Content-Encoding")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValidationError(f"the gzip body is corrupt: {exc}", field="Content-Encoding") from exc
    if len(data) > limit:
        raise PayloadTooLarge(f"the body inflates past {limit} bytes", field="$")
    if not inflater.eof:
        raise ValidationError("the gzip body is truncated", field="Content-Encoding")
    return data


def _basic_username(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0].strip() or None


async def write_key_principal(services: Services, request: Request[Any, Any, Any], body_key: str | None) -> Principal:
    """The brand whose secret key is the Segment write key (Basic username, Bearer, or ``writeKey`` in the body).

    Raises:
        AuthenticationError: no key, or an unknown one.
        PermissionDenied: a publishable key.
    """
    header = request.headers.get("authorization", "")
    key = _basic_username(header)
    if key is None and header.lower().startswith("bearer "):
        key = header[7:].strip()
    key = key or (body_key or "").strip()
    if not key:
        raise AuthenticationError("send a Questline secret key as the write key (HTTP Basic username)")
    principal = await services.keys.resolve(key)
    if principal.kind is not KeyKind.SECRET:
        raise PermissionDenied("the write key must be a secret key (sk_…)")
    return principal


async def ingest(services: Services, request: Request[Any, Any, Any], body: bytes, endpoint: str) -> SegmentOk:
    """Decode, map and apply a Segment request (identify, then events, then refunds), all validated first."""
    settings = services.settings
    data = inflate(body, encoding=request.headers.get("content-encoding", ""), limit=settings.max_body_bytes)
    messages, body_key = segment.decode(data, endpoint=endpoint, max_batch=settings.max_batch)
    principal = await write_key_principal(services, request, body_key)
    async with services.db.read() as session:
        custom = await store.get_mapping(session, brand_id=principal.brand.id, source="segment")
    now = services.clock.now()
    actions = segment.to_actions(messages, mapping=merged(custom, SEGMENT_DEFAULTS), now=now)
    profiles = [_member_in(a) for a in actions if isinstance(a, segment.Identify)]
    for profile in profiles:
        member, created = await members_repo.upsert_member(
            services.db, brand_id=principal.brand.id, data=profile, now=now
        )
        if not created:
            for hook in services.member_update_hooks:
                await hook(principal.brand, member.id)
    events = [a for a in actions if isinstance(a, Event)]
    if events:
        await services.pipeline.process(principal.brand, events)
    refunds = [a for a in actions if isinstance(a, segment.Retraction)]
    if refunds:
        async with services.db.write() as session:
            for refund in refunds:
                await store.retract(
                    session,
                    brand_id=principal.brand.id,
                    original_event_id=refund.reference,
                    amount=refund.amount,
                    source="segment",
                    request_key=f"segment:{refund.request_id}",
                    now=now,
                    by="order_id",
                    member=refund.member,
                )
        for refund in refunds:
            await services.retractions.request(
                principal.brand, event_key=refund.reference, amount=refund.amount, reason="Segment refund",
                source="segment", request_key=f"segment:{refund.request_id}", by="order_id", member=refund.member,
            )  # fmt: skip
    return SegmentOk()


def _member_in(identify: segment.Identify) -> MemberIn:
    try:
        return msgspec.convert(
            {"external_id": identify.member, "display_name": identify.display_name, "attributes": identify.attributes},
            MemberIn,
        )
    except msgspec.ValidationError as exc:
        raise ValidationError(f"identify: {exc}", field="$.userId") from exc


_DESCRIPTION = "Segment's HTTP tracking API (write key = a secret key as the Basic username; gzip accepted)."


def segment_problem(request: Request[Any, Any, Any], exc: QuestlineError) -> Response[dict[str, Any]]:
    """A problem details body that also carries Segment's ``code`` and ``message`` (its libraries read them)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.slug,
        "message": exc.detail,
    }
    if exc.field is not None:
        body["field"] = exc.field
    return Response(body, status_code=exc.status, media_type="application/problem+json")


class SegmentController(Controller):
    """Segment-compatible ingestion (``host = https://<questline>/segment``)."""

    path = "/segment/v1"
    tags = ("integrations",)
    exception_handlers = {QuestlineError: segment_problem}  # noqa: RUF012

    @post(["/track", "/t"], status_code=200, summary="Segment track", description=_DESCRIPTION)
    async def track(self, request: Request[Any, Any, Any], body: RawBody, services: ServicesDep) -> SegmentOk:
        """One ``track`` message: an event."""
        return await ingest(services, request, body, "track")

    @post(["/identify", "/i"], status_code=200, summary="Segment identify", description=_DESCRIPTION)
    async def identify(self, request: Request[Any, Any, Any], body: RawBody, services: ServicesDep) -> SegmentOk:
        """One ``identify`` message: traits become the member's attributes, ``name`` the display name."""
        return await ingest(services, request, body, "identify")

    @post(["/batch", "/b", "/import"], status_code=200, summary="Segment batch", description=_DESCRIPTION)
    async def batch(self, request: Request[Any, Any, Any], body: RawBody, services: ServicesDep) -> SegmentOk:
        """``{"batch": [...]}`` of track and identify messages, applied all or nothing."""
        return await ingest(services, request, body, "batch")

    @post("/webhook", status_code=200, summary="Segment webhook destination", description=_DESCRIPTION)
    async def webhook(self, request: Request[Any, Any, Any], body: RawBody, services: ServicesDep) -> SegmentOk:
        """One message of any type, as Segment's webhook destination POSTs it."""
        return await ingest(services, request, body, "any")
