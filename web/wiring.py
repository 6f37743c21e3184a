"""The composition root: every collaborator built once, typed, for every entry point.

:func:`open_services` is the one place where the packages meet. The HTTP app (``web/app.py``), every
``questline`` command and the background jobs get their :class:`~web.deps.Services` from it, so a command
cannot miss a collaborator the server has: a leaderboard period closed from the command line pays its
badge reward exactly as the server's period closer does.

What one domain offers another is an engine-level Protocol (``engine.grants.BadgeGranter``) passed here
as a typed argument; no domain imports a sibling. The pipeline is built once, after its processors:
segments (each event's member segments, from metrics read with the member lock) → points → velocity limits (hold
events beyond a limit) → referrals (a qualifying event pays both sides) → offers (bonuses of personalised offers,
within their budgets) → challenges → tiers (upgrades on what they awarded) → badges (a completion can award a
badge) → leaderboards (they total what the others awarded) → notifications (who was overtaken; wakes the feed) →
the pages' live-update publisher → the outbox wake-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import Redis

from badges import service as badges_service
from badges.openbadges import Urls
from badges.processor import BadgesProcessor
from badges.retraction import BadgesUndo, revoke_function
from challenges.processor import ChallengeProcessor
from challenges.retraction import ChallengesUndo
from engine import settlement
from engine.aio import cancel_and_wait
from engine.clock import Clock, SystemClock
from engine.db import Database, create_engine
from engine.egress import EgressGuard, pinned_client
from engine.grants import BadgeGranter
from engine.mail import create_sender
from engine.metrics import PipelineObserver, label_brands
from engine.outbox import OutboxDeliverer
from engine.pipeline import Pipeline, Processor
from engine.points import PointsProcessor
from engine.publishing import OutboxProcessor
from engine.redisconn import create_redis_client
from engine.retraction import Retractions
from engine.retraction_models import SWEEP_SECONDS
from engine.schema import upgrade
from engine.settings import Settings
from engine.tenants import KeyCache
from engine.velocity import VelocityStep
from leaderboards.retraction import BoardsUndo
from leaderboards.service import Leaderboards
from leagues import service as leagues_service
from notifications.processor import NotificationsStep, RankWatcher
from referrals.processor import ReferralProcessor
from segments.offer_step import Offers, OffersStep
from segments.processor import Segments, SegmentsStep
from tiers import service as tiers_service
from tiers.processor import Programs as TierPrograms
from tiers.processor import TiersProcessor
from tiers.retraction import TiersUndo
from web import member_hooks
from web.board_scores import board_scores
from web.deps import MemberUpdateHook, Services
from web.jobs import Jobs
from web.metrics import PipelineMetrics, watch_pool
from web.notify_jobs import BoardNeighbours, NotificationsWorker
from web.notify_mail import TemplateRenderer
from web.pages.live import LivePublisher
from web.pages.wallet_cards import refresh_passes
from web.segment_sources import SOURCES as SEGMENT_SOURCES
from web.tracing import instrumented

log = logging.getLogger("questline")

TIER_REVIEW_SECONDS = 900.0
"""How often every brand's tiers are re-evaluated (downgrades at window ends, overrides that lapsed)."""


def create_redis(settings: Settings) -> Redis:
    """A redis-py asyncio client with short timeouts and a circuit breaker, or an in-process fake one for ``memory://``."""
    if settings.uses_fake_redis:
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=False)
    return create_redis_client(settings)


def pipeline_steps(
    settings: Settings,
    *,
    redis: Redis,
    leaderboards: Leaderboards,
    outbox: OutboxDeliverer,
    grant_badge: BadgeGranter | None = None,
    segments: Segments | None = None,
    notifications: NotificationsWorker | None = None,
) -> list[Processor]:
    """Every domain's pipeline steps, in the order they must run."""
    tier_programs = TierPrograms()  # the points step reads tier multipliers through it (engine.grants.TierMultipliers)
    return [
        # first: earning-rule filters, eligibility and badge rules of every later step read `{"segment": …}`;
        # its metrics are one statement right after the member lock (engine.grants.LockColumns)
        SegmentsStep(segments or Segments(SEGMENT_SOURCES)),
        PointsProcessor(tier_multipliers=tier_programs),
        VelocityStep(),  # holds events beyond a velocity limit before any other domain sees them
        ReferralProcessor(),  # a qualifying event's referral points are earned like the rule's
        OffersStep(Offers()),  # multiplies what the earning rules gave; after velocity (held events get nothing)
        ChallengeProcessor(),
        TiersProcessor(tier_programs, grant_badge=grant_badge),  # counts what points and challenges awarded
        BadgesProcessor(public_url=settings.public_url),
        leaderboards.processor(),
        NotificationsStep(  # after the boards reported new ranks (who was overtaken); wakes the feed worker
            watcher=notifications.watcher if notifications is not None else None,
            wake=notifications.wake if notifications is not None else None,
        ),
        LivePublisher(redis, namespace=settings.redis_namespace),  # after every domain wrote its effects
        OutboxProcessor(outbox, rank_interval=settings.webhook_rank_interval_seconds),
    ]


def build_services(
    settings: Settings,
    *,
    db: Database,
    redis: Redis,
    clock: Clock,
    http: httpx.AsyncClient,
    egress: EgressGuard,
    processors: Sequence[Processor] | None = None,
    observer: PipelineObserver | None = None,
) -> Services:
    """Build every domain's services and the pipeline on the given connections (nothing is started).

    Args:
        settings: configuration.
        db: the database.
        redis: the Redis client boards and live updates use.
        clock: time source (tests pass a ``FrozenClock``).
        http: the client webhooks are sent with.
        egress: checks webhook URLs (no internal addresses) at registration and before each delivery.
        processors: pipeline steps to use instead of :func:`pipeline_steps` (tests).
        observer: what times the pipeline's steps and counts its results (default: metrics, no traces).
    """
    label_brands(settings.metrics_brand_labels)  # the `brand` label's cap, for this process's counters
    outbox = OutboxDeliverer(db, http=http, clock=clock, guard=egress)
    grant_badge: BadgeGranter = badges_service.grant_function(Urls(settings.public_url))
    leaderboards = Leaderboards(db, redis, namespace=settings.redis_namespace, clock=clock, grant_badge=grant_badge)
    segments = Segments(SEGMENT_SOURCES)
    mailer = create_sender(settings.smtp_url, sender=settings.mail_from)
    notifications = NotificationsWorker(
        db=db, redis=redis, namespace=settings.redis_namespace, clock=clock, mailer=mailer,
        renderer=TemplateRenderer(secret=settings.secret, public_url=settings.public_url),
        watcher=RankWatcher(redis, namespace=settings.redis_namespace, neighbours=BoardNeighbours(leaderboards)),
    )  # fmt: skip
    steps = (
        list(processors)
        if processors is not None
        else pipeline_steps(
            settings,
            redis=redis,
            leaderboards=leaderboards,
            outbox=outbox,
            grant_badge=grant_badge,
            segments=segments,
            notifications=notifications,
        )
    )
    erasure_hooks = member_hooks.erasure_hooks(redis, namespace=settings.redis_namespace)
    export_hooks = member_hooks.export_hooks(clock)
    # Labels live in Redis beside the standings: a profile change (display name, scope attribute) is
    # rewritten there at once.
    member_update_hooks: tuple[MemberUpdateHook, ...] = (leaderboards.refresh_member,)
    # A retraction undoes the event in each domain (engine.grants.EventUndo), in the pipeline's order.
    retractions = Retractions(
        db,
        clock=clock,
        undos=(
            ChallengesUndo(db, revoke_badge=revoke_function(Urls(settings.public_url))),
            BadgesUndo(Urls(settings.public_url)),
            TiersUndo(),
            BoardsUndo(leaderboards),
        ),
        notify=outbox.notify,
    )
    return Services(
        settings=settings,
        db=db,
        redis=redis,
        clock=clock,
        keys=KeyCache(db, ttl=settings.key_cache_seconds),
        egress=egress,
        outbox=outbox,
        grant_badge=grant_badge,
        leaderboards=leaderboards,
        league_scores=board_scores,
        pipeline=Pipeline(
            db,
            processors=steps,
            clock=clock,
            observer=observer or PipelineMetrics(),
            prefold_min_events=settings.prefold_min_events,
        ),
        retractions=retractions,
        erasure_hooks=erasure_hooks,
        export_hooks=export_hooks,
        member_update_hooks=member_update_hooks,
        segments=segments,
        mailer=mailer,
        notifications=notifications,
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    redis: Redis | None = None,
    http: httpx.AsyncClient | None = None,
    egress: EgressGuard | None = None,
    processors: Sequence[Processor] | None = None,
    migrate: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[Services]:
    """Open the database (upgrading the schema unless told not to), Redis and HTTP, and build the services.

    What it opened it closes on exit; a ``redis`` or ``http`` client passed in is left open for its owner.
    Webhooks go out through a client pinned to the addresses ``egress`` checked (no DNS rebinding).
    With a ``tracer_provider`` SQL, Redis and webhook calls and the pipeline's steps are traced.
    """
    egress = egress or EgressGuard(settings.egress_policy)
    if migrate:
        await upgrade(settings.database_url)
    db = Database(
        create_engine(
            settings.database_url, connect_timeout=settings.database_timeout_s, pre_ping=settings.database_pre_ping
        ),
        replica=create_engine(
            settings.database_read_url, connect_timeout=settings.database_timeout_s, pre_ping=settings.database_pre_ping
        )
        if settings.database_read_url
        else None,
        units=create_engine(
            settings.database_url,
            connect_timeout=settings.database_timeout_s,
            pre_ping=settings.database_pre_ping,
            application_name="questline-units",
            generic_plans=True,
        )
        if settings.database_url.startswith("postgresql")
        else None,
    )
    redis_client = redis if redis is not None else create_redis(settings)
    http_client = http if http is not None else pinned_client(egress)
    for engine in db.engines:
        watch_pool(engine)
    tracer = trace.get_tracer("questline", tracer_provider=tracer_provider) if tracer_provider else None
    try:
        with instrumented(tracer_provider, engines=db.engines, redis=redis_client, http=http_client):
            yield build_services(
                settings,
                db=db,
                redis=redis_client,
                clock=clock or SystemClock(),
                http=http_client,
                egress=egress,
                processors=processors,
                observer=PipelineMetrics(tracer=tracer),
            )
    finally:
        if http is None:
            await http_client.aclose()
        if redis is None:
            await redis_client.aclose()
        await db.dispose()


async def points_round(services: Services) -> None:
    """Release pending points and expire due lots, once (the ``points`` job runs it periodically).

    Reads are exact without it (lots past their dates count as released or expired); it writes the entries
    and sends the ``points.expiring``/``points.expired`` notices.
    """
    now = services.clock.now()
    released = await settlement.release_due(services.db, now=now)  # settles those members fully
    run = await settlement.expire_due(services.db, now=now)
    if released.expired or run.expired or run.notices:
        services.outbox.notify()


async def league_round(services: Services) -> leagues_service.RoundReport:
    """One round of the leagues job: close due league periods, seat new scorers."""
    return await leagues_service.run_round(services.db, scores=services.league_scores, now=services.clock.now())


def schedule_jobs(services: Services, jobs: Jobs) -> Jobs:
    """Add the periodic jobs to ``jobs``: points release and expiry, tier reviews, period closing, leagues."""
    every = services.settings.points_jobs_seconds
    if every > 0:
        jobs.every("points", every, lambda: points_round(services))
    jobs.every("tiers", TIER_REVIEW_SECONDS, lambda: tiers_service.evaluate_all(services.db, now=services.clock.now()))
    interval = services.leaderboards.close_interval
    if interval:
        jobs.every("leaderboards", interval, services.leaderboards.maintenance_round)
        jobs.every("leagues", interval, lambda: league_round(services))
    # Retractions received before their event are applied once it is logged (out-of-order delivery).
    jobs.every("retractions", SWEEP_SECONDS, services.retractions.apply_pending)
    wallet_every = services.settings.wallet_refresh_seconds
    if wallet_every > 0:
        jobs.every("wallet", wallet_every, lambda: refresh_passes(services))
    return jobs


@asynccontextmanager
async def background_jobs(services: Services, *, deliver_webhooks: bool = True) -> AsyncIterator[None]:
    """Run the background work while inside: boards, webhook and notification delivery, the periodic jobs.

    The periodic jobs (:func:`schedule_jobs`) run on APScheduler (``web.jobs``); the points jobs every
    ``QUESTLINE_POINTS_JOBS_SECONDS`` (0: off). Webhook delivery and the notifications worker are woken
    loops (a commit wakes them). Boards are rebuilt from SQL at once for the embedded in-process Redis (it
    starts empty), else in the background.
    """
    await services.leaderboards.start(rebuild_now=services.settings.uses_fake_redis)
    delivery = asyncio.create_task(services.outbox.run(), name="outbox") if deliver_webhooks else None
    notifying = (
        asyncio.create_task(services.notifications.run(), name="notifications")
        if services.notifications is not None and deliver_webhooks
        else None
    )
    jobs = schedule_jobs(services, Jobs())
    jobs.start()
    try:
        yield
    finally:
        await jobs.stop()
        await cancel_and_wait([t for t in (notifying,) if t is not None])
        await services.leaderboards.stop()
        await cancel_and_wait([t for t in (delivery,) if t is not None])
