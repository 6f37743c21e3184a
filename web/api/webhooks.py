"""Webhook endpoints of the brand: register, list, delete, the delivery log, replay, test, secret rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from engine import audit, webhooks
from engine.webhooks import DeliveryAttempt, DeliveryPage, RotateSecretIn, WebhookEndpoint, WebhookEndpointIn
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers


class WebhooksController(Controller):
    """Where Questline sends signed notifications (Standard Webhooks 1.0); topics are in the document's `webhooks`."""

    path = "/v1/webhooks"
    tags = ("webhooks",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List webhook endpoints")
    async def list_endpoints(self, services: ServicesDep, principal: PrincipalDep) -> list[WebhookEndpoint]:
        """The brand's endpoints (secrets are not shown again)."""
        return await webhooks.list_endpoints(services.db, brand_id=principal.brand.id)

    @post("/", summary="Register a webhook endpoint", status_code=201)
    async def add_endpoint(
        self, data: JSONBody[WebhookEndpointIn], services: ServicesDep, principal: PrincipalDep
    ) -> WebhookEndpoint:
        """Answers the endpoint with its signing secret, shown only this once.

        The URL must be https and its host must resolve only to public addresses (422 naming ``$.url``).
        Each topic must be one of the catalog (see the document's `webhooks`), `*` or a prefix wildcard
        matching one (`badge.*`); anything else is a 422 naming it (`$.topics[i]`).
        """
        return await webhooks.add_endpoint(
            services.db, brand_id=principal.brand.id, data=data, now=services.clock.now(), guard=services.egress,
            actor=audit.key_actor(principal.prefix),
        )  # fmt: skip

    @delete("/{endpoint_id:int}", summary="Delete a webhook endpoint")
    async def remove_endpoint(self, endpoint_id: FromPath[int], services: ServicesDep, principal: PrincipalDep) -> None:
        """Stop sending to this endpoint (its delivery log goes with it)."""
        await webhooks.remove_endpoint(
            services.db, brand_id=principal.brand.id, endpoint_id=endpoint_id, now=services.clock.now(),
            actor=audit.key_actor(principal.prefix),
        )  # fmt: skip

    @get("/{endpoint_id:int}/deliveries", summary="The endpoint's delivery log")
    async def deliveries(
        self,
        endpoint_id: FromPath[int],
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Attempts per page.")] = 50,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=2**62, description="Cursor: attempts older than this id.")
        ] = None,
    ) -> DeliveryPage:
        """Every attempt to send to this endpoint, newest first: status, response code, latency, answer excerpt."""
        return await webhooks.deliveries(
            services.db, brand_id=principal.brand.id, endpoint_id=endpoint_id, limit=limit, before=before
        )

    @post(
        "/{endpoint_id:int}/deliveries/{delivery_id:int}/replay",
        summary="Replay a delivery",
        status_code=200,
        responses=answers(200, DeliveryAttempt, "The new attempt (it may have failed: see `succeeded`)"),
    )
    async def replay(
        self, endpoint_id: FromPath[int], delivery_id: FromPath[int], services: ServicesDep, principal: PrincipalDep
    ) -> DeliveryAttempt:
        """Send the message of this delivery to the endpoint again now, with the same `webhook-id`."""
        return await services.outbox.replay(
            brand_id=principal.brand.id, endpoint_id=endpoint_id, delivery_id=delivery_id
        )

    @post(
        "/{endpoint_id:int}/test",
        summary="Send a test event",
        status_code=200,
        responses=answers(200, DeliveryAttempt, "The attempt (it may have failed: see `succeeded`)"),
    )
    async def test(self, endpoint_id: FromPath[int], services: ServicesDep, principal: PrincipalDep) -> DeliveryAttempt:
        """Send a `webhook.test` message to this endpoint now (and to no other)."""
        return await services.outbox.send_test(brand_id=principal.brand.id, endpoint_id=endpoint_id)

    @post(
        "/{endpoint_id:int}/rotate-secret",
        summary="Rotate the signing secret",
        status_code=200,
        responses=answers(200, WebhookEndpoint, "The endpoint with its new secret, shown only this once"),
    )
    async def rotate_secret(
        self, endpoint_id: FromPath[int], data: JSONBody[RotateSecretIn], services: ServicesDep, principal: PrincipalDep
    ) -> WebhookEndpoint:
        """A new secret at once; the old one keeps signing too for `overlap_hours` (default 24, 0 = not at all).

        During the overlap each message's `webhook-signature` carries both signatures (new, then old).
        """
        return await webhooks.rotate_secret(
            services.db, brand_id=principal.brand.id, endpoint_id=endpoint_id,
            overlap=timedelta(hours=data.overlap_hours), now=services.clock.now(),
            actor=audit.key_actor(principal.prefix),
        )  # fmt: skip
