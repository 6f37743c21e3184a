"""The composition root: builds settings, database, Redis, clock and the pipeline, and wires the domains.

``create_app(settings)`` is the only place where packages meet: engine processors and domain processors
are handed to the pipeline here, in the order they must run.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from engine.db import Database, create_engine
from engine.egress import EgressGuard, Resolver, pinned_client
from engine.outbox import OutboxDeliverer, OutboxProcessor
from engine.pipeline import Pipeline, Processor
from engine.points import PointsProcessor
from engine.schema import upgrade
from engine.settings import Settings, load_settings, refuse_unsafe
from engine.tenants import KeyCache
from web import pages
from web.api import badges as badges_api
from web.api import challenges as challenges_api
from web.api import leaderboards as leaderboards_api
from web.api.events import EventsController
from web.api.members import MembersController
from web.api.rules import EarningRulesController
from web.api.webhooks import WebhooksController
from web.deps import Services, ServicesDep, provide_principal, provide_services
from web.errors import problem_details_plugin
from web.logs import AccessLogMiddleware, configure_logging
from web.pages.security import SecurityHeadersMiddleware

log = logging.getLogger("questline")
VERSION = "0.1.0"


def create_redis(settings: Settings) -> Redis:
    """A redis-py asyncio client, or an in-process fake one for ``memory://``."""
    if settings.uses_fake_redis:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=False)
    return Redis.from_url(settings.redis_url, decode_responses=False)


#: Domain wiring modules, in pipeline order: each exports ``routes``, ``processors(services)`` and
#: ``startup(services)``. Challenges run before badges (a completion can award a badge) and leaderboards
#: run last (they total what the others awarded).
DOMAINS = (challenges_api, badges_api, leaderboards_api)


def build_processors(services: Services) -> list[Processor]:
    """The pipeline's steps, in order: points, the domains that react to them, live updates, the outbox."""
    steps: list[Processor] = [PointsProcessor()]
    for domain in DOMAINS:
        steps.extend(domain.processors(services))
    steps.extend(pages.processors(services))  # live-update publisher: after every domain wrote its effects
    steps.append(OutboxProcessor(services.extras.get("outbox")))
    return steps


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
        processors: pipeline steps to use instead of :func:`build_processors` (tests).
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
        if settings.auto_migrate:
            await upgrade(settings.database_url)
        db = Database(create_engine(settings.database_url))
        redis_client = redis if redis is not None else create_redis(settings)
        services = Services(
            settings=settings,
            db=db,
            redis=redis_client,
            clock=clock,
            pipeline=Pipeline(db, processors=[], clock=clock),
            keys=KeyCache(db, ttl=settings.key_cache_seconds),
            egress=egress,
        )
        http_client = http if http is not None else pinned_client(egress)
        deliverer = OutboxDeliverer(db, http=http_client, clock=clock, guard=egress)
        services.extras["outbox"] = deliverer
        services.pipeline.processors = list(processors) if processors is not None else build_processors(services)
        app.state.services = services
        for domain in DOMAINS:
            await domain.startup(services)
        await pages.startup(services)
        if settings.demo:
            from web.demo import banner, ensure_demo

            await ensure_demo(services)
            print(await banner(services), flush=True)
        # Long-lived objects made at start need no more GC scans, and a larger first generation keeps the
        # collector from running every few hundred allocations during a batch (≈ 20% of batch time).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        log.info("questline ready", extra={"database": db.dialect, "redis": settings.redis_url.split("@")[-1]})
        delivery = asyncio.create_task(deliverer.run(), name="outbox") if deliver_webhooks else None
        try:
            yield
        finally:
            for domain in DOMAINS:
                shutdown = getattr(domain, "shutdown", None)
                if shutdown is not None:
                    await shutdown(services)
            if delivery is not None:
                delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await delivery
            if http is None:
                await http_client.aclose()
            if redis is None:
                await redis_client.aclose()
            await db.dispose()

    page_options = pages.app_options(settings)
    return Litestar(
        route_handlers=[
            health,
            EventsController,
            MembersController,
            EarningRulesController,
            WebhooksController,
            *(route for domain in DOMAINS for route in domain.routes),
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
