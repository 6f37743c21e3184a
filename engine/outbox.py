"""Outbox delivery: notifications written in the event's transaction become signed webhooks.

Messages are signed as Standard Webhooks 1.0 says (:mod:`engine.signatures`). A message is claimed (short transaction, ``SKIP LOCKED`` on PostgreSQL so several workers share
the work), sent outside any transaction, and then marked delivered or scheduled for a retry with
exponential backoff and jitter. An endpoint answering ``410 Gone`` is disabled. If a brand has several
endpoints and one fails, the retry goes only to the endpoints not yet served (``delivered_to`` remembers
the others); receivers still dedupe on ``webhook-id``. During a secret's rotation overlap the header
carries two signatures, new and old (:mod:`engine.webhooks`).

Every attempt is logged in ``webhook_deliveries`` (status, response code, latency, the first 500 characters
of the answer): the console's and the API's delivery log, from which a delivery can be replayed
(:meth:`OutboxDeliverer.replay`, same ``webhook-id``); :meth:`OutboxDeliverer.send_test` sends a
``webhook.test`` message to one endpoint.

Every URL is checked by an :class:`engine.egress.EgressGuard` when it is registered and again before each
delivery (no loopback, private, link-local… addresses: see :mod:`engine.egress`), and the stored
``last_error`` says only what kind of failure happened (an HTTP status, "no HTTP response", "address not
allowed"), never the transport's own message, so it cannot serve to scan the network behind the server.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from sqlalchemy import select, update

from engine import topics as catalog
from engine.aio import wait_event
from engine.egress import EgressGuard, EgressRefused
from engine.errors import NotFound
from engine.metrics import job_run, record_delivery
from engine.orm import OutboxRow, WebhookDeliveryRow, WebhookEndpointRow
from engine.publishing import OutboxProcessor as OutboxProcessor
from engine.signatures import sign
from engine.webhooks import DeliveryAttempt, endpoint_row, signing_secrets, to_attempt

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

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
#: A message that failed every retry is parked this far ahead (kept for the record, never sent again).
GAVE_UP_DELAY = timedelta(days=3650)
#: An undelivered message scheduled beyond ``now`` + this was given up on (not a backlog to deliver).
GIVEN_UP_HORIZON = timedelta(days=365)


class _Claimed(msgspec.Struct, frozen=True):
    id: int
    brand_id: int
    message_id: str
    topic: str
    payload: dict[str, Any]
    attempts: int
    delivered_to: frozenset[int] = frozenset()
    """Endpoints already served (an earlier attempt reached them): a retry skips them."""


class _Sent(msgspec.Struct, frozen=True, kw_only=True):
    """What one HTTP attempt gave: the endpoint's status and answer, or a generic reason for none."""

    code: int | None = None
    error: str = ""
    latency_ms: int = 0
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


#: The delivery log keeps this much of an endpoint's answer.
EXCERPT_CHARS = 500
EXCERPT_BYTES = 2000

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

    @property
    def db(self) -> Database:
        """The database the outbox lives in."""
        return self._db

    def notify(self) -> None:
        """Deliver soon: new rows were committed."""
        self._wake.set()

    async def run(self, *, interval: float = 2.0, gap: float = 0.25) -> None:
        """Deliver forever, every ``interval`` seconds or as soon as :meth:`notify` is called.

        Rounds start at least ``gap`` seconds apart: under a busy ingest every commit notifies, and one round
        then serves all the commits of the last ``gap`` seconds (its claim and settle statements are not
        repeated per commit). A message is still sent within about ``gap`` seconds of its commit.
        """
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                async with job_run("outbox"):
                    while await self._deliver_round():
                        pass
            except Exception:
                # Keep the loop alive: delivery state is in SQL and the next round retries.
                log.exception("outbox delivery round failed")
            await wait_event(self._wake, interval)
            rest = gap - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)
            self._wake.clear()

    async def deliver_due(self) -> int:
        """Deliver one batch of due messages; returns how many were settled or attempted."""
        settled, claimed = await self._one_batch()
        return settled + claimed

    async def _deliver_round(self) -> bool:
        """One batch, as :meth:`deliver_due`; True when a full batch suggests more is due right now."""
        settled, claimed = await self._one_batch()
        return settled >= _SETTLE_BATCH or claimed >= self._batch

    async def _one_batch(self) -> tuple[int, int]:
        settled = await self._settle_unheard()
        claimed = await self._claim()
        if not claimed:
            return settled, 0
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
                and catalog.subscribed(list(e.topics or []), message.topic)
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
        return settled, len(claimed)

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

    async def _send(self, message: _Claimed, endpoint: WebhookEndpointRow, body: bytes) -> _Sent:
        """Send one message to one endpoint: its answer, or a generic reason it got none."""
        try:
            await self._guard.check_url(endpoint.url)
        except EgressRefused:
            return _Sent(error=REFUSED)
        now = self._clock.now()
        timestamp = int(now.timestamp())
        signatures = [
            sign(secret, message_id=message.message_id, timestamp=timestamp, body=body)
            for secret in signing_secrets(endpoint, now)
        ]
        headers = {
            "content-type": "application/json",
            "webhook-id": message.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signatures),
            "user-agent": "Questline-Webhooks/1",
        }
        started = time.perf_counter()
        try:
            response = await self._http.post(endpoint.url, content=body, headers=headers, timeout=15.0)
        except EgressRefused:  # the pinned transport re-resolved the name to an address not allowed
            return _Sent(error=REFUSED)
        except httpx.HTTPError as exc:
            log.info("webhook delivery failed", extra={"endpoint": endpoint.id, "error": exc.__class__.__name__})
            return _Sent(error=NO_RESPONSE, latency_ms=_elapsed_ms(started))
        excerpt = response.content[:EXCERPT_BYTES].decode("utf-8", "replace")[:EXCERPT_CHARS]
        return _Sent(code=response.status_code, latency_ms=_elapsed_ms(started), excerpt=excerpt)

    async def _deliver(self, message: _Claimed, targets: list[WebhookEndpointRow]) -> list[int]:
        """Send one message to its endpoints and record the outcome; returns the endpoints found gone (410)."""
        body = msgspec.json.encode(message.payload)
        errors: list[str] = []
        gone: list[int] = []
        served = set(message.delivered_to)
        attempts: list[tuple[int, _Sent]] = []
        for endpoint in targets:
            sent = await self._send(message, endpoint, body)
            attempts.append((endpoint.id, sent))
            record_delivery(endpoint.id, sent.code, refused=sent.error == REFUSED)
            if sent.code == 410:
                gone.append(endpoint.id)
                served.add(endpoint.id)
            elif sent.ok:
                served.add(endpoint.id)
            else:
                errors.append(f"{endpoint.url}: {sent.error or f'HTTP {sent.code}'}")
        now = self._clock.now()
        async with self._db.write() as session:
            await self._log(session, message, attempts, kind="delivery", at=now)
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
                    "next_attempt_at": now + GAVE_UP_DELAY,
                    "last_error": ("gave up: " + "; ".join(errors))[:2000],
                }
            await session.execute(update(OutboxRow).where(OutboxRow.id == message.id).values(**values))
        return gone

    @staticmethod
    async def _log(
        session: AsyncSession, message: _Claimed, attempts: list[tuple[int, _Sent]], *, kind: str, at: datetime
    ) -> list[int]:
        """Write the delivery log rows of the endpoints that still exist (one may be deleted meanwhile)."""
        ids = {endpoint_id for endpoint_id, _ in attempts}
        alive = set(await session.scalars(select(WebhookEndpointRow.id).where(WebhookEndpointRow.id.in_(ids))))
        rows = [
            WebhookDeliveryRow(
                brand_id=message.brand_id,
                endpoint_id=endpoint_id,
                outbox_id=message.id,
                message_id=message.message_id,
                topic=message.topic,
                kind=kind,
                attempted_at=at,
                succeeded=sent.ok,
                response_code=sent.code,
                latency_ms=sent.latency_ms,
                body_excerpt=sent.excerpt,
                error=sent.error,
            )
            for endpoint_id, sent in attempts
            if endpoint_id in alive
        ]
        session.add_all(rows)
        await session.flush()
        return [r.id for r in rows]

    async def send_once(self, *, brand_id: BrandId, endpoint_id: int, outbox_id: int, kind: str) -> DeliveryAttempt:
        """Send one stored message to one endpoint now (a replay or a test) and log the attempt.

        A successful replay counts as delivered to that endpoint: the outbox's own retries skip it.

        Raises:
            NotFound: no such endpoint or message in the brand.
        """
        async with self._db.read() as session:
            endpoint = await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id)
            row = await session.scalar(
                select(OutboxRow).where(OutboxRow.id == outbox_id, OutboxRow.brand_id == brand_id)
            )
            if row is None:
                raise NotFound(f"no message {outbox_id} to send", field="id")
            message = _Claimed(row.id, row.brand_id, row.message_id, row.topic, dict(row.payload), row.attempts)
        sent = await self._send(message, endpoint, msgspec.json.encode(message.payload))
        record_delivery(endpoint.id, sent.code, refused=sent.error == REFUSED)
        async with self._db.write() as session:
            ids = await self._log(session, message, [(endpoint.id, sent)], kind=kind, at=self._clock.now())
            if not ids:
                raise NotFound(f"no webhook endpoint {endpoint_id}", field="id")
            if sent.ok and kind == "replay":
                stored = await session.get(OutboxRow, outbox_id, with_for_update=self._db.is_postgres)
                if stored is not None and endpoint_id not in (stored.delivered_to or []):
                    stored.delivered_to = sorted({*(stored.delivered_to or []), endpoint_id})
            logged = await session.get(WebhookDeliveryRow, ids[0])
            if logged is None:  # written just above in this transaction
                raise NotFound(f"no delivery {ids[0]}", field="id")
            return to_attempt(logged)

    async def replay(self, *, brand_id: BrandId, endpoint_id: int, delivery_id: int) -> DeliveryAttempt:
        """Send the message of one logged delivery again to its endpoint (same ``webhook-id``: receivers dedupe).

        Raises:
            NotFound: the endpoint has no such delivery.
        """
        async with self._db.read() as session:
            outbox_id = await session.scalar(
                select(WebhookDeliveryRow.outbox_id).where(
                    WebhookDeliveryRow.id == delivery_id,
                    WebhookDeliveryRow.endpoint_id == endpoint_id,
                    WebhookDeliveryRow.brand_id == brand_id,
                )
            )
        if outbox_id is None:
            raise NotFound(f"endpoint {endpoint_id} has no delivery {delivery_id}", field="delivery_id")
        return await self.send_once(brand_id=brand_id, endpoint_id=endpoint_id, outbox_id=outbox_id, kind="replay")

    async def send_test(self, *, brand_id: BrandId, endpoint_id: int) -> DeliveryAttempt:
        """Send a ``webhook.test`` message to one endpoint now (it goes to no other endpoint).

        Raises:
            NotFound: the brand has no such endpoint.
        """
        now = self._clock.now()
        data = {"endpoint": endpoint_id, "message": "Questline test event"}
        async with self._db.write() as session:
            await endpoint_row(session, brand_id=brand_id, endpoint_id=endpoint_id)
            row = OutboxRow(
                **catalog.outbox_row(brand_id=brand_id, topic="webhook.test", data=data, now=now)
                | {"delivered_at": now, "attempts": 1, "delivered_to": [endpoint_id]}
            )
            session.add(row)
            await session.flush()
            outbox_id = row.id
        return await self.send_once(brand_id=brand_id, endpoint_id=endpoint_id, outbox_id=outbox_id, kind="test")


def _elapsed_ms(started: float) -> int:
    return max(0, round((time.perf_counter() - started) * 1000))
