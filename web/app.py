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

import httpx
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis

from engine.clock import Clock, SystemClock
from engine.egress import EgressGuard, Resolver
from engine.pipeline import Processor
from engine.settings import Settings, load_settings, refuse_unsafe
from web import pages
from web.api import board_reads
from web.api.audit import AuditController
from web.api.badges import routes as badges_routes
from web.api.challenges import routes as challenges_routes
from web.api.enrollment import ErasureRequestsController
from web.api.events import EventsController
from web.api.health import health_routes
from web.api.integrations import routes as integrations_routes
from web.api.leaderboards import routes as leaderboards_routes
from web.api.leagues import routes as leagues_routes
from web.api.members import MembersController
from web.api.notifications import NotificationsController
from web.api.passkit import passkit_router
from web.api.referrals import ReferralsController
from web.api.retractions import RetractionsController
from web.api.review import ReviewController
from web.api.rewards import routes as rewards_routes
from web.api.rules import EarningRulesController
from web.api.segments import routes as segments_routes
from web.api.tiers import routes as tiers_routes
from web.api.wallet import MemberWalletController, WalletSettingsController
from web.api.webhooks import WebhooksController
from web.deps import provide_principal, provide_services
from web.errors import problem_details_plugin
from web.hygiene import request_hygiene
from web.idempotency import IdempotencyMiddleware
from web.logs import AccessLogMiddleware, configure_logging
from web.metrics import RefusedEventsMiddleware, http_metrics, metrics_endpoint, worker_stopped
from web.openapi import openapi_config, openapi_plugins
from web.pages.console.review import AuditPageController, MemberExportPageController, ReviewPageController
from web.pages.landing import landing
from web.pages.security import SecurityHeadersMiddleware
from web.ratelimit import RateLimitMiddleware, expose_headers
from web.tracing import TraceIdMiddleware, tracer_provider_for, tracing_plugin
from web.wiring import background_jobs, open_services

log = logging.getLogger("questline")
VERSION = "0.1.0"


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    redis: Redis | None = None,
    processors: Sequence[Processor] | None = None,
    http: httpx.AsyncClient | None = None,
    deliver_webhooks: bool = True,
    resolver: Resolver | None = None,
    tracer_provider: TracerProvider | None = None,
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
        tracer_provider: where traces go instead of ``settings.otlp_endpoint`` (tests pass an in-memory one).

    Raises:
        ValidationError: outside the embedded default, a guessable secret or the demo brand (refused to start).
    """
    settings = settings or load_settings(os.environ)
    refuse_unsafe(settings)
    egress = EgressGuard(settings.egress_policy, resolver=resolver)
    configure_logging(settings)
    clock = clock or SystemClock()
    tracing = tracer_provider or tracer_provider_for(settings)

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
                tracer_provider=tracing,
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
        worker_stopped()
        if tracing is not None and tracer_provider is None:
            tracing.shutdown()  # flush the spans still batched

    page_options = pages.app_options(settings)
    app = Litestar(
        route_handlers=[
            *health_routes(VERSION),
            metrics_endpoint,
            EventsController,
            RetractionsController,
            MembersController,
            EarningRulesController,
            WebhooksController,
            *challenges_routes,
            *badges_routes,
            *leaderboards_routes,
            *leagues_routes,
            *integrations_routes,
            *rewards_routes,
            *tiers_routes,
            WalletSettingsController,
            MemberWalletController,
            passkit_router(settings.passkit_url),
            *segments_routes,
            *pages.routes,
            ReferralsController,
            NotificationsController,
            ErasureRequestsController,
            ReviewController,
            AuditController,
            ReviewPageController,
            AuditPageController,
            MemberExportPageController,
            landing,
        ],
        dependencies={
            "services": Provide(provide_services, sync_to_thread=False),
            "caller": Provide(provide_principal),
        },
        plugins=[problem_details_plugin(), *openapi_plugins(), *([tracing_plugin(tracing)] if tracing else [])],
        guards=[request_hygiene],
        middleware=[
            TraceIdMiddleware,
            AccessLogMiddleware,
            SecurityHeadersMiddleware.define(settings),
            http_metrics().middleware,
            RefusedEventsMiddleware,
            RateLimitMiddleware.define(),  # before idempotency: a refused request claims no key
            IdempotencyMiddleware.define(),
            *page_options.pop("middleware", []),
        ],
        lifespan=[lifespan],
        state=State({"settings": settings}),
        request_max_body_size=settings.max_body_bytes,
        cors_config=CORSConfig(
            allow_origins=["*"],
            allow_credentials=False,
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=expose_headers(),
        ),
        openapi_config=openapi_config(VERSION),
        debug=False,
        logging_config=None,  # web.logs configured structured logging already
        **page_options,
    )
    board_reads.install(app, settings)  # plain board reads answered before the stack (web/api/board_reads.py)
    return app
