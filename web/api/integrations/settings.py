"""``/v1/integrations``: a brand's e-commerce webhook settings (secrets are stored, never returned)."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine.errors import NotFound
from integrations import store
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.schemas.integrations import SourceIn, SourceOut, SourcesOut

PLATFORMS = ("shopify", "woocommerce")


def _out(settings: store.SourceSettings, slug: str) -> SourceOut:
    return SourceOut(
        platform=settings.platform,
        shop_domain=settings.shop_domain,
        member_key=settings.member_key,
        webhook_path=f"/hooks/{settings.platform}/{slug}",
        updated_at=settings.updated_at,
    )


class IntegrationsController(Controller):
    """Per-brand settings of the order-webhook sources (secret key)."""

    path = "/v1/integrations"
    tags = ("integrations",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List configured platforms")
    async def list_sources(self, services: ServicesDep, principal: PrincipalDep) -> SourcesOut:
        """Every configured platform, without secrets."""
        async with services.db.read() as session:
            found = await store.list_sources(session, brand_id=principal.brand.id)
        return SourcesOut(items=[_out(s, principal.brand.slug) for s in found])

    @put("/{platform:str}", summary="Configure Shopify or WooCommerce")
    async def put_source(
        self, platform: FromPath[str], data: JSONBody[SourceIn], services: ServicesDep, principal: PrincipalDep
    ) -> SourceOut:
        """Store the webhook secret, shop domain and member key; answers where to point the webhooks."""
        if platform not in PLATFORMS:
            raise NotFound(f"unknown platform {platform!r}; one of {', '.join(PLATFORMS)}", field="platform")
        async with services.db.write() as session:
            saved = await store.put_source(
                session,
                brand_id=principal.brand.id,
                platform=platform,
                secret=data.secret,
                shop_domain=data.shop_domain,
                member_key=data.member_key,
                now=services.clock.now(),
            )
        return _out(saved, principal.brand.slug)
