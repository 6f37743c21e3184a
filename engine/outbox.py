"""Outbox delivery: notifications written in the event's transaction become signed webhooks.

Signatures follow Standard Webhooks 1.0: headers ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the endpoint's ``whsec_``
secret. A message is claimed (short transaction, ``SKIP LOCKED`` on PostgreSQL so several workers share
the work), sent outside any transaction, and then marked delivered or scheduled for a retry with
exponential backoff and jitter. An endpoint answering ``410 Gone`` is disabled. If a brand has several
endpoints and one fails, the retry goes only to the endpoints not yet served (``delivered_to`` remembers
the others); receivers still dedupe on ``webhook-id``. Signing is the ``standardwebhooks`` package's.

Every URL is checked by an :class:`engine.egress.EgressGuard` when it is registered and again before each
delivery (no loopback, private, link-local… addresses: see :mod:`engine.egress`), and the stored
``last_error`` says only what kind of failure happened (an HTTP status, "no HTTP response", "address not
allowed"), never the transport's own message, so it cannot serve to scan the network behind the server.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import msgspec
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from engine import audit
from engine.aio import wait_event
from engine.egress import EgressGuard, EgressRefused
from engine.errors import NotFound, ValidationError
from engine.metrics import job_run, record_delivery
from engine.orm import OutboxRow, WebhookEndpointRow

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.db import Database
    from engine.ids import BrandId

log = logging.getLogger(__name__)

#: Delay before each retry (Standard Webhooks' example schedule, ≈ 3 days in all).
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
CLAIM_LEASE = timedelta(minutes=2)
TOLERANCE_SECONDS = 5 * 60

Url = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class WebhookEndpointIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A webhook endpoint to register."""

    url: Url
    topics: list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]] = []
    """Topics to receive (``challenge.completed``, ``badge.*``); empty means all."""


class WebhookEndpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A registered endpoint (the secret is only returned when it is created)."""

    id: int
    url: str
    topics: list[str]
    active: bool
    disabled_reason: str
    created_at: datetime
    secret: str | None = None


def new_secret() -> str:
    """A fresh ``whsec_`` signing secret (24 random bytes, base64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message (``standardwebhooks``' signer)."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def verify(secret: str, *, headers: dict[str, str], body: bytes, now: datetime) -> bool:
    """Check a received webhook as a receiver would (any matching ``v1`` signature, 5-minute tolerance).

    ``standardwebhooks``' own ``Webhook.verify`` reads the wall clock; this takes ``now`` so tests control time.
    """
    try:
        timestamp = int(headers["webhook-timestamp"])
        message_id = headers["webhook-id"]
        offered = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, message_id=message_id, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)


def subscribed(topics: list[str], topic: str) -> bool:
    """Whether an endpoint with ``topics`` receives ``topic`` (empty = all; ``badge.*`` = a family)."""
    if not topics:
        return True
    return any(t == topic or (t.endswith(".*") and topic.startswith(t[:-1])) for t in topics)


def _to_endpoint(row: WebhookEndpointRow, *, with_secret: bool = False) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        topics=list(row.topics or []),
        active=row.active,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        secret=row.secret if with_secret else None,
    )


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
        ValidationError: a URL the egress guard refuses (``$.url``), or too many endpoints.
    """
    await (guard or EgressGuard()).check_url(data.url, field="$.url")
    async with db.write() as session:
        count = len(
            list(await session.scalars(select(WebhookEndpointRow.id).where(WebhookEndpointRow.brand_id == brand_id)))
        )
        if count >= 10:
            raise ValidationError("a brand may register at most 10 webhook endpoints", field="$.url")
        row = WebhookEndpointRow(
            brand_id=brand_id, url=data.url, secret=new_secret(), topics=list(data.topics), active=True, created_at=now
        )
        session.add(row)
        await session.flush()
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="webhook.added", at=now, target=data.url,
            details={"endpoint": row.id, "topics": list(data.topics)},
        )  # fmt: skip
        return _to_endpoint(row, with_secret=True)


async def list_endpoints(db: Database, *, brand_id: BrandId) -> list[WebhookEndpoint]:
    """The brand's endpoints, oldest first."""
    async with db.read() as session:
        rows = await session.scalars(
            select(WebhookEndpointRow).where(WebhookEndpointRow.brand_id == brand_id).order_by(WebhookEndpointRow.id)
        )
        return [_to_endpoint(r) for r in rows]


async def remove_endpoint(
    db: Database, *, brand_id: BrandId, endpoint_id: int, actor: str = "system", now: datetime | None = None
) -> None:
    """Delete an endpoint of the brand.

    Raises:
        NotFound: the brand has no such endpoint.
    """
    async with db.write() as session:
        row = await session.scalar(
            select(WebhookEndpointRow).where(
                WebhookEndpointRow.brand_id == brand_id, WebhookEndpointRow.id == endpoint_id
            )
        )
        if row is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}", field="id")
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="webhook.removed", at=now or datetime.now(UTC),
            target=row.url, details={"endpoint": endpoint_id},
        )  # fmt: skip
        await session.delete(row)


class _Claimed(msgspec.Struct, frozen=True):
    id: int
    brand_id: int
    message_id: str
    topic: str
    payload: dict[str, Any]
    attempts: int
    delivered_to: frozenset[int] = frozenset()
    """Endpoints already served (an earlier attempt reached them): a retry skips them."""


#: What the console may show of a failed attempt: a kind of failure, never the transport's own words.
NO_RESPONSE = "no HTTP response (connection failed or timed out)"
REFUSED = "address not allowed"


#: Most messages of brands without endpoints marked delivered by one statement.
_SETTLE_BATCH = 5000


class OutboxDeliverer:
    """Delivers due outbox rows to the brands' endpoints; run by the app in the background."""

    def __init__(
        self,
        db: Database,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        batch: int = 100,
        guard: EgressGuard | None = None,
    ) -> None:
        self._db = db
        self._http = http
        self._clock = clock
        self._guard = guard or EgressGuard()
        self._batch = batch
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """Deliver soon: new rows were committed."""
        self._wake.set()

    async def run(self, *, interval: float = 2.0) -> None:
        """Deliver forever, every ``interval`` seconds or as soon as :meth:`notify` is called."""
        while True:
            try:
                async with job_run("outbox"):
                    while await self.deliver_due():
                        pass
            except Exception:
                # Keep the loop alive: delivery state is in SQL and the next round retries.
                log.exception("outbox delivery round failed")
            await wait_event(self._wake, interval)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Deliver one batch of due messages; returns how many were settled or attempted."""
        settled = await self._settle_unheard()
        claimed = await self._claim()
        if not claimed:
            return settled
        async with self._db.read() as session:
            rows = await session.scalars(
                select(WebhookEndpointRow).where(
                    WebhookEndpointRow.brand_id.in_({m.brand_id for m in claimed}),
                    WebhookEndpointRow.active.is_(True),
                )
            )
            endpoints: dict[int, list[WebhookEndpointRow]] = {}
            for row in rows:
                endpoints.setdefault(row.brand_id, []).append(row)
        unheard: list[int] = []
        gone: set[int] = set()  # answered 410 earlier in this batch: disabled, so skipped as before
        for message in claimed:
            targets = [
                e
                for e in endpoints.get(message.brand_id, [])
                if e.id not in gone
                and e.id not in message.delivered_to
                and subscribed(list(e.topics or []), message.topic)
            ]
            if targets:
                gone.update(await self._deliver(message, targets))
            else:
                unheard.append(message.id)
        if unheard:  # no endpoint listens: nothing to send, so delivered, in one statement
            async with self._db.write() as session:
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(unheard))
                    .values(delivered_at=self._clock.now(), attempts=OutboxRow.attempts + 1, last_error="")
                )
        return settled + len(claimed)

    async def _settle_unheard(self) -> int:
        """Mark due messages of brands without an active endpoint delivered, in one statement.

        Nothing is sent for them, so they need neither loading nor claiming: a brand that listens to no
        webhooks (most of them, in a busy ingest) costs one UPDATE per round instead of a claim, a flush
        and an UPDATE per hundred messages. Messages of brands with endpoints are claimed as usual, and
        those whose topic no endpoint subscribes to are settled there.
        """
        now = self._clock.now()
        listening = (
            select(WebhookEndpointRow.id)
            .where(WebhookEndpointRow.brand_id == OutboxRow.brand_id, WebhookEndpointRow.active.is_(True))
            .exists()
        )
        due = (
            select(OutboxRow.id)
            .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now, ~listening)
            .order_by(OutboxRow.id)
            .limit(_SETTLE_BATCH)
        )
        if self._db.is_postgres:
            due = due.with_for_update(skip_locked=True)  # a row another worker is delivering is left to it
        async with self._db.write() as session:
            result = await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(due.scalar_subquery()))
                .values(delivered_at=now, attempts=OutboxRow.attempts + 1, last_error="")
                .execution_options(synchronize_session=False)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _claim(self) -> list[_Claimed]:
        now = self._clock.now()
        async with self._db.write() as session:
            query = (
                select(OutboxRow)
                .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now)
                .order_by(OutboxRow.id)
                .limit(self._batch)
            )
            if self._db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            for row in rows:
                row.next_attempt_at = now + CLAIM_LEASE  # a crashed worker's claim expires and is retried
            return [
                _Claimed(
                    r.id,
                    r.brand_id,
                    r.message_id,
                    r.topic,
                    dict(r.payload),
                    r.attempts,
                    frozenset(int(e) for e in r.delivered_to or []),
                )
                for r in rows
            ]

    async def _send(self, message: _Claimed, endpoint: WebhookEndpointRow, body: bytes) -> int | str:
        """Send one message to one endpoint: the HTTP status, or a generic reason it got none."""
        try:
            await self._guard.check_url(endpoint.url)
        except EgressRefused:
            return REFUSED
        timestamp = int(self._clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, message_id=message.message_id, timestamp=timestamp, body=body),
            "user-agent": "Questline-Webhooks/1",
        }
        try:
            response = await self._http.post(endpoint.url, content=body, headers=headers, timeout=15.0)
        except EgressRefused:  # the pinned transport re-resolved the name to an address not allowed
            return REFUSED
        except httpx.HTTPError as exc:
            log.info("webhook delivery failed", extra={"endpoint": endpoint.id, "error": exc.__class__.__name__})
            return NO_RESPONSE
        return response.status_code

    async def _deliver(self, message: _Claimed, targets: list[WebhookEndpointRow]) -> list[int]:
        """Send one message to its endpoints and record the outcome; returns the endpoints found gone (410)."""
        body = msgspec.json.encode(message.payload)
        errors: list[str] = []
        gone: list[int] = []
        served = set(message.delivered_to)
        for endpoint in targets:
            outcome = await self._send(message, endpoint, body)
            record_delivery(endpoint.id, outcome if isinstance(outcome, int) else None, refused=outcome == REFUSED)
            if outcome == 410:
                gone.append(endpoint.id)
                served.add(endpoint.id)
            elif isinstance(outcome, int) and 200 <= outcome < 300:
                served.add(endpoint.id)
            else:
                reason = outcome if isinstance(outcome, str) else f"HTTP {outcome}"
                errors.append(f"{endpoint.url}: {reason}")
        now = self._clock.now()
        async with self._db.write() as session:
            if gone:
                await session.execute(
                    update(WebhookEndpointRow)
                    .where(WebhookEndpointRow.id.in_(gone))
                    .values(active=False, disabled_reason="the endpoint answered 410 Gone")
                )
            values: dict[str, Any] = {"attempts": message.attempts + 1, "delivered_to": sorted(served)}
            if not errors:
                values |= {"delivered_at": now, "last_error": ""}
            elif message.attempts < len(RETRY_SCHEDULE):
                delay = RETRY_SCHEDULE[message.attempts]
                jitter = timedelta(seconds=random.uniform(0, delay.total_seconds() * 0.1))
                values |= {"next_attempt_at": now + delay + jitter, "last_error": "; ".join(errors)[:2000]}
            else:
                values |= {
                    "next_attempt_at": now + timedelta(days=3650),
                    "last_error": ("gave up: " + "; ".join(errors))[:2000],
                }
            await session.execute(update(OutboxRow).where(OutboxRow.id == message.id).values(**values))
        return gone


class OutboxProcessor:
    """Pipeline step that wakes the deliverer after a commit that wrote notifications."""

    name = "outbox"

    def __init__(self, deliverer: OutboxDeliverer | None) -> None:
        self.deliverer = deliverer

    async def process(self, uow: Any) -> None:
        """Nothing to do inside the transaction (the pipeline writes outbox rows)."""

    async def after_commit(self, uow: Any) -> None:
        """Wake the deliverer if any event produced a notification."""
        from engine.effects import Notification

        if self.deliverer is not None and any(isinstance(e, Notification) for c in uow.events for e in c.effects):
            self.deliverer.notify()
