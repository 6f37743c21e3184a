"""Shopify and WooCommerce order webhooks: ``POST /hooks/{shopify,woocommerce}/{brand slug}``.

Each request is verified against the brand's webhook secret (base64 HMAC-SHA256 of the raw body, compared
in constant time) before anything is read; a bad signature answers 401.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import FromPath, RawBody

from engine.errors import AuthenticationError
from engine.tenants import Brand, get_brand
from integrations import shop, store
from web.deps import ServicesDep
from web.hygiene import ANY_MEDIA_TYPE
from web.schemas.integrations import HookOut

#: WooCommerce's ping when a webhook is created: a form body, no topic and no signature.
_WOO_PING = b"webhook_id="


async def _brand_and_secret(services: Any, slug: str, platform: str) -> tuple[Brand, store.SourceSettings]:
    async with services.db.read() as session:
        brand = await get_brand(session, slug)
        source = await store.get_source(session, brand_id=brand.id, platform=platform)
    return brand, source


async def _apply(services: Any, brand: Brand, platform: str, outcome: shop.Outcome) -> HookOut:
    if isinstance(outcome, shop.Ignored):
        return HookOut(outcome="ignored", detail=outcome.reason)
    if isinstance(outcome, shop.RefundRequest):
        async with services.db.write() as session:
            new = await store.retract(
                session,
                brand_id=brand.id,
                original_event_id=outcome.event_id,
                amount=outcome.amount,
                source=platform,
                request_key=outcome.request_id,
                now=services.clock.now(),
            )
        done = await services.retractions.request(
            brand, event_key=outcome.event_id, amount=outcome.amount, reason=f"{platform} refund",
            source=platform, request_key=outcome.request_id,
        )  # fmt: skip
        return HookOut(
            outcome="retraction",
            event_id=outcome.event_id,
            duplicate=not new,
            detail="retraction applied" if done.status == "applied" else "retraction kept until the order arrives",
        )
    [result] = await services.pipeline.process(brand, [outcome])
    return HookOut(outcome="purchase", event_id=result.id, duplicate=result.duplicate)


class HooksController(Controller):
    """Order webhooks from e-commerce platforms (signed with the brand's webhook secret)."""

    path = "/hooks"
    tags = ("integrations",)
    # The platform picks the media type; the signature over the raw body decides (Controller.opt is a class
    # attribute Litestar reads).
    opt = {ANY_MEDIA_TYPE: True}  # noqa: RUF012

    @post(
        "/shopify/{slug:str}",
        status_code=200,
        summary="Shopify order webhook",
        description="Topics `orders/paid` (a purchase) and `refunds/create` (a retraction request); others are ignored.",
    )
    async def shopify(
        self, slug: FromPath[str], request: Request[Any, Any, Any], body: RawBody, services: ServicesDep
    ) -> HookOut:
        """Verify ``X-Shopify-Hmac-Sha256`` and apply the order or refund."""
        brand, source = await _brand_and_secret(services, slug, "shopify")
        if not shop.verify(source.secret, body, request.headers.get("x-shopify-hmac-sha256")):
            raise AuthenticationError(
                "the X-Shopify-Hmac-Sha256 signature does not match", field="X-Shopify-Hmac-Sha256"
            )
        outcome = shop.shopify(
            request.headers.get("x-shopify-topic", ""),
            shop.decode(body),
            member_key="customer_id" if source.member_key == "customer_id" else "email",
            now=services.clock.now(),
        )
        return await _apply(services, brand, "shopify", outcome)

    @post(
        "/woocommerce/{slug:str}",
        status_code=200,
        summary="WooCommerce order webhook",
        description="Topics `order.updated`/`order.created`: status processing or completed is a purchase, refunded a retraction request.",
    )
    async def woocommerce(
        self, slug: FromPath[str], request: Request[Any, Any, Any], body: RawBody, services: ServicesDep
    ) -> HookOut:
        """Verify ``X-WC-Webhook-Signature`` and apply the order."""
        brand, source = await _brand_and_secret(services, slug, "woocommerce")
        topic = request.headers.get("x-wc-webhook-topic", "")
        if not topic and body.startswith(_WOO_PING):
            return HookOut(outcome="ignored", detail="ping")
        if not shop.verify(source.secret, body, request.headers.get("x-wc-webhook-signature")):
            raise AuthenticationError(
                "the X-WC-Webhook-Signature signature does not match", field="X-WC-Webhook-Signature"
            )
        outcome = shop.woocommerce(
            topic,
            shop.decode(body),
            member_key="customer_id" if source.member_key == "customer_id" else "email",
            now=services.clock.now(),
        )
        return await _apply(services, brand, "woocommerce", outcome)
