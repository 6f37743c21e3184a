"""Webhook endpoints of a brand: register, list, delete, rotate the secret, and read the delivery log.

Topics are checked against :mod:`engine.topics` (an unknown topic or a wildcard matching nothing is a 422
naming it). Every change bumps the brand's configuration version, so the pipeline's cached "which topics
does anyone listen to" (:mod:`engine.publishing`) is current in every worker.

Rotating a secret keeps the old one for an overlap (default 24 h): during it each message carries two
signatures in ``webhook-signature`` (new first, then old, space-separated, as Standard Webhooks allows), so a
receiver can switch secrets at its own pace; after it, only the new one.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import msgspec
from sqlalchemy import func, select

from engine import audit, tenants, topics
from engine.egress import EgressGuard
from engine.errors import NotFound, ValidationError
from engine.orm import WebhookDeliveryRow, WebhookEndpointRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]
TopicName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z_.*]+$")]
MAX_ENDPOINTS = 10
DEFAULT_OVERLAP_HOURS = 24


class WebhookEndpointIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A webhook endpoint to register."""

    url: Url
    topics: Annotated[list[TopicName], msgspec.Meta(max_length=50)] = []
    """Topics of the catalog (``challenge.completed``), ``*`` or a prefix wildcard (``badge.*``); empty means all."""


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A registered endpoint (the secret is only returned when it is created or rotated)."""

    id: int
    url: str
    topics: list[str]
    active: bool
    disabled_reason: str
    created_at: datetime
    secret: str | None = None
    previous_secret_until: datetime | None = None
    """While set and in the future, messages are signed with the previous secret too."""


class RotateSecretIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long the old secret keeps signing next to the new one."""

    overlap_hours: Annotated[int, msgspec.Meta(ge=0, le=168)] = DEFAULT_OVERLAP_HOURS


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt to send one message to one endpoint."""

    id: int
    endpoint: int
    message_id: str
    topic: str
    kind: str
    """``delivery`` (sent from the outbox), ``replay`` or ``test``."""
    attempted_at: datetime
    succeeded: bool
    response_code: int | None
    """The endpoint's HTTP status; ``null`` when it gave none (see ``error``)."""
    latency_ms: int
    body_excerpt: str
    """The first 500 characters of the endpoint's answer."""
    error: str


class DeliveryPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of an endpoint's delivery log, newest first."""

    deliveries: list[DeliveryAttempt]
    next_before: int | None = None
    """Pass as ``before`` for the next (older) page."""


def new_secret() -> str:
    """A fresh ``whsec_`` signing secret (24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def to_endpoint(row: WebhookEndpointRow, *, with_secret: bool = False) -> WebhookEndpoint:
    """The API view of an endpoint row."""
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        topics=list(row.topics or []),
        active=row.active,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        secret=row.secret if with_secret else None,
        previous_secret_until=row.previous_secret_until if row.previous_secret else None,
    )


def signing_secrets(row: WebhookEndpointRow, now: datetime) -> list[str]:
    """The secrets that sign a message sent ``now``: the current one, and the previous during the overlap."""
    until = row.previous_secret_until
    if row.previous_secret and until is not None and until > now:
        return [row.secret, row.previous_secret]
    return [row.secret]


async def add_endpoint(
    db: Database,
    *,
    brand_id: BrandId,
    data: WebhookEndpointIn,
    now: datetime,
    guard: EgressGuard | None = None,
    actor: str = "system",
) -> WebhookEndpoint:
    """Register an endpoint; the answer carries its secret, shown only this once.

    Raises:
        ValidationError: an unknown topic (``$.topics[i]``), a URL the egress guard refuses (``$.url``), or
            too many endpoints.
    """
    wanted = topics.check_topics(list(data.topics))
    await (guard or EgressGuard()).check_url(data.url, field="$.url")
    async with db.write() as session:
        count = await session.scalar(
            select(func.count()).select_from(WebhookEndpointRow).where(WebhookEndpointRow.brand_id == brand_id)
        )
        if int(count or 0) >= MAX_ENDPOINTS:
            raise ValidationError(f"a brand may register at most {MAX_ENDPOINTS} webhook endpoints", field="$.url")
        row = WebhookEndpointRow(
            brand_id=brand_id, url=data.url, secret=new_secret(), topics=wanted, active=True, created_at=now
        )
        session.add(row)
        await session.flush()
        await tenants.bump_config_version(session, brand_id)
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="webhook.added", at=now, target=data.url,
            details={"endpoint": row.id, "topics": wanted},
        )  # fmt: skip
        return to_endpoint(row, with_secret=True)


async def list_endpoints(db: Database, *, brand_id: BrandId) -> list[WebhookEndpoint]:
    """The brand's endpoints, oldest first."""
    async with db.read() as session:
        rows = await session.scalars(
            select(WebhookEndpointRow).where(WebhookEndpointRow.brand_id == brand_id).order_by(WebhookEndpointRow.id)
        )
        return [to_endpoint(r) for r in rows]


async def endpoint_row(
    session: AsyncSession, *, brand_id: BrandId, endpoint_id: int, lock: bool = False
) -> WebhookEndpointRow:
    """The brand's endpoint row.

    Raises:
        NotFound: the brand has no such endpoint.
    """
    query = select(WebhookEndpointRow).where(
        WebhookEndpointRow.brand_id == brand_id, WebhookEndpointRow.id == endpoint_id
    )
    row = await session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id}", field="id")
    return row


async def get_endpoint(db: Database, *, brand_id: BrandId, endpoint_id: int) -> WebhookEndpoint:
    """One endpoint of the brand (without its secret).

    Raises:
        NotFound: the brand has no such endpoint.
    """
    async with db.read() as session:
        return to_endpoint(await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id))


async def remove_endpoint(
    db: Database, *, brand_id: BrandId, endpoint_id: int, now: datetime, actor: str = "system"
) -> None:
    """Delete an endpoint of the brand (and its delivery log).

    Raises:
        NotFound: the brand has no such endpoint.
    """
    async with db.write() as session:
        row = await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id)
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="webhook.removed", at=now,
            target=row.url, details={"endpoint": endpoint_id},
        )  # fmt: skip
        await session.delete(row)
        await tenants.bump_config_version(session, brand_id)


async def rotate_secret(
    db: Database, *, brand_id: BrandId, endpoint_id: int, overlap: timedelta, now: datetime, actor: str = "system"
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the current one keeps signing too until ``now + overlap``.

    The answer carries the new secret, shown only this once. A rotation during an overlap drops the
    oldest secret at once (only two are ever sent).

    Raises:
        NotFound: the brand has no such endpoint.
    """
    async with db.write() as session:
        row = await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id, lock=db.is_postgres)
        if overlap > timedelta(0):
            row.previous_secret, row.previous_secret_until = row.secret, now + overlap
        else:
            row.previous_secret, row.previous_secret_until = "", None
        row.secret = new_secret()
        await session.flush()
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="webhook.secret_rotated", at=now, target=row.url,
            details={"endpoint": endpoint_id, "overlap_hours": overlap.total_seconds() / 3600},
        )  # fmt: skip
        return to_endpoint(row, with_secret=True)


def to_attempt(row: WebhookDeliveryRow) -> DeliveryAttempt:
    """The API view of a delivery row."""
    return DeliveryAttempt(
        id=row.id,
        endpoint=row.endpoint_id,
        message_id=row.message_id,
        topic=row.topic,
        kind=row.kind,
        attempted_at=row.attempted_at,
        succeeded=row.succeeded,
        response_code=row.response_code,
        latency_ms=row.latency_ms,
        body_excerpt=row.body_excerpt,
        error=row.error,
    )


async def deliveries(
    db: Database, *, brand_id: BrandId, endpoint_id: int, limit: int = 50, before: int | None = None
) -> DeliveryPage:
    """The endpoint's delivery log, newest first, ``limit`` at a time.

    Raises:
        NotFound: the brand has no such endpoint.
    """
    async with db.read() as session:
        await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id)
        query = select(WebhookDeliveryRow).where(WebhookDeliveryRow.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(WebhookDeliveryRow.id < before)
        rows = list(await session.scalars(query.order_by(WebhookDeliveryRow.id.desc()).limit(limit + 1)))
    page = [to_attempt(r) for r in rows[:limit]]
    return DeliveryPage(deliveries=page, next_before=page[-1].id if len(rows) > limit else None)
