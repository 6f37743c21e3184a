"""Console: webhook endpoints and recent messages; per endpoint its delivery log, replay, test and secret rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from engine import topics, webhooks
from engine.audit import admin_actor
from engine.errors import ValidationError
from engine.orm import OutboxRow
from engine.webhooks import DeliveryAttempt, WebhookEndpointIn
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render

#: What the form offers: every family as a wildcard, then every topic (``webhook.test`` is sent on demand only).
FAMILIES = tuple(sorted({f"{t.name.split('.')[0]}.*" for t in topics.TOPICS if t.name != "webhook.test"}))
TOPICS = tuple(t.name for t in topics.TOPICS if t.name != "webhook.test")
OVERLAPS = (0, 1, 24, 72, 168)


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    """One outbox message as the webhooks page lists it."""

    message_id: str
    topic: str
    created_at: Any
    attempts: int
    delivered_at: Any
    last_error: str
    sent_to: int = 0
    """How many endpoints received it (0 with a delivery time: there was no endpoint to send it to)."""


class WebhooksController(Controller):
    """Webhook endpoints (Standard Webhooks, ``whsec_`` secrets), recent messages and each endpoint's log."""

    path = "/console/webhooks"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], **extra: Any) -> Template:
        endpoints = await webhooks.list_endpoints(viewer.services.db, brand_id=viewer.brand.id)
        async with viewer.services.db.read() as session:
            rows = await session.scalars(
                select(OutboxRow).where(OutboxRow.brand_id == viewer.brand.id).order_by(OutboxRow.id.desc()).limit(20)
            )
            deliveries = [
                DeliveryOut(
                    message_id=r.message_id,
                    topic=r.topic,
                    created_at=r.created_at,
                    attempts=r.attempts,
                    delivered_at=r.delivered_at,
                    last_error=r.last_error,
                    sent_to=len(r.delivered_to or []),
                )
                for r in rows
            ]
        context: dict[str, Any] = {
            "endpoints": endpoints,
            "deliveries": deliveries,
            "topics": TOPICS,
            "families": FAMILIES,
            "created": None,
            "errors": {},
            "form": {},
        }
        context.update(extra)
        return render(viewer, "console/webhooks.html.jinja2", active="webhooks", request=request, **context)

    @get("/")
    async def webhooks(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Endpoints and the last messages."""
        return await self._page(viewer, request)

    @post("/")
    async def add(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Register an endpoint and show its signing secret once."""
        form = await request.form()
        url = str(form.get("url", "")).strip()
        offered = {*TOPICS, *FAMILIES}
        chosen = [str(t) for t in form.getall("topics", []) if str(t) in offered]
        kept = {"url": url, "topics": chosen}
        try:
            data = msgspec.convert({"url": url, "topics": chosen}, WebhookEndpointIn)
        except msgspec.ValidationError:
            return await self._page(
                viewer, request, errors={"url": viewer.t("Enter a full http(s):// URL.")}, form=kept
            )
        try:
            created = await webhooks.add_endpoint(
                viewer.services.db, brand_id=viewer.brand.id, data=data, now=viewer.now, guard=viewer.services.egress,
                actor=admin_actor(viewer.admin.email),
            )  # fmt: skip
        except ValidationError as exc:
            return await self._page(viewer, request, errors={"url": exc.detail}, form=kept)
        return await self._page(viewer, request, created=created)

    @post("/{endpoint_id:int}/delete")
    async def remove(self, endpoint_id: FromPath[int], viewer: ConsoleViewerDep) -> Redirect:
        """Stop sending to an endpoint."""
        await webhooks.remove_endpoint(
            viewer.services.db, brand_id=viewer.brand.id, endpoint_id=endpoint_id, now=viewer.now,
            actor=admin_actor(viewer.admin.email),
        )  # fmt: skip
        return done("/console/webhooks", "deleted")

    async def _endpoint_page(
        self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], endpoint_id: int, **extra: Any
    ) -> Template:
        db = viewer.services.db
        endpoint = await webhooks.get_endpoint(db, brand_id=viewer.brand.id, endpoint_id=endpoint_id)
        log = await webhooks.deliveries(db, brand_id=viewer.brand.id, endpoint_id=endpoint_id, limit=50)
        context: dict[str, Any] = {
            "endpoint": endpoint,
            "log": log.deliveries,
            "overlaps": OVERLAPS,
            "attempt": None,
            "rotated": None,
            "overlapping": endpoint.previous_secret_until is not None and endpoint.previous_secret_until > viewer.now,
        }
        context.update(extra)
        return render(viewer, "console/webhook_endpoint.html.jinja2", active="webhooks", request=request, **context)

    @get("/{endpoint_id:int}")
    async def endpoint(
        self, endpoint_id: FromPath[int], request: Request[Any, Any, Any], viewer: ConsoleViewerDep
    ) -> Template:
        """One endpoint: its delivery log (status, response code, latency, answer) and its actions."""
        return await self._endpoint_page(viewer, request, endpoint_id)

    @post("/{endpoint_id:int}/test")
    async def test(
        self, endpoint_id: FromPath[int], request: Request[Any, Any, Any], viewer: ConsoleViewerDep
    ) -> Template:
        """Send a ``webhook.test`` message to the endpoint now and show how it went."""
        attempt = await viewer.services.outbox.send_test(brand_id=viewer.brand.id, endpoint_id=endpoint_id)
        return await self._endpoint_page(viewer, request, endpoint_id, attempt=attempt)

    @post("/{endpoint_id:int}/deliveries/{delivery_id:int}/replay")
    async def replay(
        self, endpoint_id: FromPath[int], delivery_id: FromPath[int], request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
    ) -> Template:  # fmt: skip
        """Send a logged delivery's message to the endpoint again and show how it went."""
        attempt: DeliveryAttempt = await viewer.services.outbox.replay(
            brand_id=viewer.brand.id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )
        return await self._endpoint_page(viewer, request, endpoint_id, attempt=attempt)

    @post("/{endpoint_id:int}/rotate")
    async def rotate(
        self, endpoint_id: FromPath[int], request: Request[Any, Any, Any], viewer: ConsoleViewerDep
    ) -> Template:
        """Give the endpoint a new secret (shown once); the old one keeps signing for the chosen overlap."""
        form = await request.form()
        raw = str(form.get("overlap_hours", "24"))
        hours = int(raw) if raw.isdigit() and int(raw) in OVERLAPS else 24
        rotated = await webhooks.rotate_secret(
            viewer.services.db, brand_id=viewer.brand.id, endpoint_id=endpoint_id, overlap=timedelta(hours=hours),
            now=viewer.now, actor=admin_actor(viewer.admin.email),
        )  # fmt: skip
        return await self._endpoint_page(viewer, request, endpoint_id, rotated=rotated)
