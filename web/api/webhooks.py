"""Webhook endpoints of the brand: register (the ``whsec_`` secret is shown once), list, delete."""

from __future__ import annotations

from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import audit, outbox
from engine.outbox import WebhookEndpoint, WebhookEndpointIn
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal


class WebhooksController(Controller):
    """Where Questline sends signed notifications (Standard Webhooks 1.0)."""

    path = "/v1/webhooks"
    tags = ("webhooks",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List webhook endpoints")
    async def list_endpoints(self, services: ServicesDep, principal: PrincipalDep) -> list[WebhookEndpoint]:
        """The brand's endpoints (secrets are not shown again)."""
        return await outbox.list_endpoints(services.db, brand_id=principal.brand.id)

    @post("/", summary="Register a webhook endpoint", status_code=201)
    async def add_endpoint(
        self, data: JSONBody[WebhookEndpointIn], services: ServicesDep, principal: PrincipalDep
    ) -> WebhookEndpoint:
        """Answers the endpoint with its signing secret, shown only this once.

        The URL must be https and its host must resolve only to public addresses (422 naming ``$.url``).
        """
        return await outbox.add_endpoint(
            services.db, brand_id=principal.brand.id, data=data, now=services.clock.now(), guard=services.egress,
            actor=audit.key_actor(principal.prefix),
        )  # fmt: skip

    @delete("/{endpoint_id:int}", summary="Delete a webhook endpoint")
    async def remove_endpoint(self, endpoint_id: FromPath[int], services: ServicesDep, principal: PrincipalDep) -> None:
        """Stop sending to this endpoint."""
        await outbox.remove_endpoint(
            services.db, brand_id=principal.brand.id, endpoint_id=endpoint_id, now=services.clock.now(),
            actor=audit.key_actor(principal.prefix),
        )  # fmt: skip
