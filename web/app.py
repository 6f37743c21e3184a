"""The HTTP application: routes, plugins and the lifespan that opens the services.

Everything the handlers use comes from :func:`web.wiring.open_services`, the composition root shared
with the ``questline`` commands and the background jobs.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar, get
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from redis.asyncio import Redis

from engine.clock import Clock, SystemClock
from engine.egress import EgressGuard, Resolver
from engine.pipeline import Processor
from engine.settings import Settings, load_settings, refuse_unsafe
from web import pages
from web.api.badges import routes as badges_routes
from web.api.challenges import routes as challenges_routes
from web.api.events import EventsController
from web.api.leaderboards import routes as leaderboards_routes
from web.api.members import MembersController
from web.api.rules import EarningRulesController
from web.api.tiers import routes as tiers_routes
from web.api.webhooks import WebhooksController
from web.deps import ServicesDep, provide_principal, provide_services
from web.errors import problem_details_plugin
from web.logs import AccessLogMiddleware, configure_logging
from web.pages.security import SecurityHeadersMiddleware
from web.wiring import background_jobs, open_services

log = logging.getLogger("questline")
VERSION = "0.1.0"


@get("/health", tags=["operations"], summary="Liveness and dependencies", include_in_schema=True)
async def health(services: ServicesDep) -> dict[str, Any]:
    """Answers 200 with the state of the database and Redis."""
    from sqlalchemy import text

    async with services.db.read() as session:
        await session.execute(text("SELECT 1"))
    redis_ok = bool(await services.redis.ping())
    return {
        "status": "ok",
        "database": services.db.dialect,
        "redis": "ok" if redis_ok else "down",
        "version": VERSION,
    }


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    redis: Redis | None = None,
    processors: Sequence[Processor] | None = None,
    http: httpx.AsyncClient | None = None,
    deliver_webhooks: bool = True,
    resolver: Resolver | None = None,
) -> Litestar:
    """Build the Questline application.

    Args:
        settings: configuration; read from the environment when omitted.
        clock: time source; the system clock when omitted (tests pass a ``FrozenClock``).
        redis: a Redis client to use instead of one built from ``settings.redis_url``.
        processors: pipeline steps to use instead of :func:`web.wiring.pipeline_steps` (tests).
        http: the client webhooks are sent with (tests pass one on ``httpx.MockTransport``).
        deliver_webhooks: run the outbox deliverer in the background.
        resolver: resolves webhook hosts for the address check (tests pass a fake one).

    Raises:
        ValidationError: outside the embedded default, a guessable secret or the demo brand (refused to start).
    """
    settings = settings or load_settings(os.environ)
    refuse_unsafe(settings)
    egress = EgressGuard(settings.egress_policy, resolver=resolver)
    configure_logging(settings)
    clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with (
            open_services(
                settings,
                clock=clock,
                redis=redis,
                http=http,
                egress=egress,
                processors=processors,
                migrate=settings.auto_migrate,
            ) as services,
            background_jobs(services, deliver_webhooks=deliver_webhooks),
        ):
            app.state.services = services
            await pages.startup(services)
            if settings.demo:
                from web.demo import banner, ensure_demo

                await ensure_demo(services)
                print(await banner(services), flush=True)
            # Long-lived objects made at start need no more GC scans, and a larger first generation keeps
            # the collector from running every few hundred allocations during a batch (≈ 20% of batch time).
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            log.info(
                "questline ready",
                extra={"database": services.db.dialect, "redis": settings.redis_url.split("@")[-1]},
            )
            yield

    page_options = pages.app_options(settings)
    return Litestar(
        route_handlers=[
            health,
            EventsController,
            MembersController,
            EarningRulesController,
            WebhooksController,
            *challenges_routes,
            *badges_routes,
            *leaderboards_routes,
            *tiers_routes,
            *pages.routes,
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "caller": Provide(provide_principal),
        },
        plugins=[problem_details_plugin()],
        middleware=[
            AccessLogMiddleware,
            SecurityHeadersMiddleware.define(settings),
            *page_options.pop("middleware", []),
        ],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        request_max_body_size=settings.max_body_bytes,
        cors_config=CORSConfig(
            allow_origins=["*"], allow_credentials=False, allow_headers=["Authorization", "Content-Type"]
        ),
        openapi_config=OpenAPIConfig(
            title="Questline API",
            version=VERSION,
            description="Gamified engagement engine for loyalty programs: events in; points, challenges, badges and ranks out.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
        debug=False,
        logging_config=None,  # web.logs configured structured logging already
        **page_options,
    )
