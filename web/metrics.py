"""``GET /metrics``: Prometheus text for HTTP, domain and internal metrics, behind a scrape token.

- HTTP requests and latency per route template and status come from Litestar's Prometheus middleware
  in a leaner form (:func:`http_metrics`, :mod:`web.http_metrics`, metric prefix ``questline_http``).
- Domain counters: new and duplicate events, points and challenge completions from the results the pipeline
  returns (:class:`PipelineMetrics`); badge awards, tier changes, redemptions and points spent or expired
  where they are written, on commit (``engine.metrics.count_on_commit``); refused ingestion requests by
  :class:`RefusedEventsMiddleware`.
- Gauges that describe shared state (outbox backlog, boards missing from Redis, Redis reachability,
  database pool) are computed when scraped, cheaply, by the worker that answers.
- With several workers ``questline serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory and
  every worker's counters are summed at scrape time (prometheus-client's multiprocess mode).

The endpoint answers only a ``Authorization: Bearer <QUESTLINE_METRICS_TOKEN>`` request; without the
setting it does not exist (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

from litestar import Request, get
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from litestar.response import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import Tracer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from engine import metrics as m
from engine.aio import within
from engine.effects import ChallengeCompleted, Effect, PointsAwarded
from engine.orm import OutboxRow
from engine.outbox import GIVEN_UP_HORIZON
from engine.pipeline import EventResult
from engine.tenants import Brand
from web.deps import Services, ServicesDep
from web.http_metrics import HttpMetricsMiddleware, flush_pending

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EVENTS_PATH = "/v1/events"
_REFUSAL_REASONS = {
    400: "malformed",
    401: "unauthenticated",
    403: "forbidden",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "throttled",
}


def http_metrics() -> PrometheusConfig:
    """Litestar's Prometheus middleware: requests, errors and latency per route template and status."""
    return PrometheusConfig(
        app_name="questline",
        prefix="questline_http",
        group_path=True,  # the route template, never the raw path: bounded label values
        exclude=["^/metrics", "^/static"],
        buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        middleware_class=HttpMetricsMiddleware,  # the same metrics, read from the scope
    )


def count_effects(brand: str, effects: Iterable[Effect]) -> None:
    """Move the domain counters by what new events caused in the pipeline.

    Points, challenge completions and the effects are counted here, from the results; what is written
    outside the pipeline too (badge awards, tier changes, redemptions, points spent or expired) is counted
    where it is written (:func:`engine.metrics.count_on_commit`), once whichever path wrote it. The figures
    are summed first and each counter moved once per unit: a batch holds thousands of effects, and each
    move of a counter takes a lock (and writes a shared file in multiprocess mode).
    """
    kinds: Counter[type[Effect]] = Counter()
    awarded: Counter[str] = Counter()
    adjusted = 0
    for effect in effects:
        kind = type(effect)
        kinds[kind] += 1
        if kind is PointsAwarded:  # no effect type is subclassed: the class says it (no pattern match per effect)
            award = cast("PointsAwarded", effect)
            if award.points > 0:
                awarded[award.source] += award.points
            elif award.points < 0:
                adjusted -= award.points
    completions = kinds.get(ChallengeCompleted, 0)
    for kind, count in kinds.items():
        m.EFFECTS.labels(kind.__struct_config__.tag).inc(count)
    for source, points in awarded.items():
        m.POINTS_AWARDED.labels(brand, source).inc(points)
    if adjusted:
        m.POINTS_ADJUSTED.labels(brand).inc(adjusted)
    if completions:
        m.CHALLENGE_COMPLETIONS.labels(brand).inc(completions)


class PipelineMetrics(m.StageTimer):
    """The pipeline observer of the HTTP app: step latency (and a span per step), results counted once."""

    def __init__(self, *, tracer: Tracer | None = None) -> None:
        self._tracer = tracer

    def stage(self, name: str, phase: str) -> AbstractAsyncContextManager[None]:
        """Time the step; inside a span ``pipeline.<name>`` when tracing is on."""
        if self._tracer is None:
            return super().stage(name, phase)
        return self._traced(self._tracer, name, phase)

    @contextlib.asynccontextmanager
    async def _traced(self, tracer: Tracer, name: str, phase: str) -> AsyncIterator[None]:
        async with super().stage(name, phase):
            with tracer.start_as_current_span(f"pipeline.{name}", attributes={"questline.phase": phase}):
                yield

    def processed(self, brand: Brand, results: Sequence[EventResult]) -> None:
        """Count new and duplicate events, and the effects of the new ones."""
        label = m.brand_label(brand)
        duplicates = sum(1 for r in results if r.duplicate)
        if duplicates:
            m.EVENTS_DUPLICATE.labels(label).inc(duplicates)
        if len(results) > duplicates:
            m.EVENTS_INGESTED.labels(label).inc(len(results) - duplicates)
        count_effects(label, (e for r in results if not r.duplicate for e in r.effects))


class RefusedEventsMiddleware:
    """Counts ``POST /v1/events`` requests answered 4xx, by reason (a refused batch is refused whole)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Watch the status of ingestion requests."""
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "POST" or scope.get("path") != EVENTS_PATH:
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if 400 <= status < 500:
                    m.EVENTS_REFUSED.labels(_REFUSAL_REASONS.get(status, f"http_{status}")).inc()
            await send(message)

        await self.app(scope, receive, watch)


def watch_pool(engine: AsyncEngine) -> None:
    """Keep ``questline_db_pool_in_use`` current from the pool's check-out and check-in events."""
    pool = engine.sync_engine.pool

    def checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info["questline_counted"] = True
        m.DB_POOL_IN_USE.inc()

    def checked_in(_dbapi: Any, record: Any) -> None:
        # Only what this listener counted: a connection checked out before it was attached (start-up work)
        # must not drive the gauge below zero.
        if record.info.pop("questline_counted", False):
            m.DB_POOL_IN_USE.dec()

    event.listen(pool, "checkout", checked_out)
    event.listen(pool, "checkin", checked_in)


def _pool_waiting(engine: AsyncEngine) -> int:
    """Tasks waiting for a pooled connection in this worker (0 when the pool does not say)."""
    queue = getattr(engine.sync_engine.pool, "_pool", None)
    waiters = getattr(queue, "_queue", None)  # AsyncAdaptedQueue wraps an asyncio.Queue
    getters = getattr(waiters, "_getters", None)
    return sum(1 for g in getters if not g.done()) if getters is not None else 0


class _Snapshot(Collector):
    """Gauges computed at scrape time, handed to prometheus-client as ready metric families."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> list[GaugeMetricFamily]:
        """The families, as computed."""
        return self._families


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


async def live_gauges(services: Services) -> list[GaugeMetricFamily]:
    """Outbox backlog and age, boards missing from Redis, Redis and pool state, read now.

    A database or Redis that does not answer is reported (``questline_database_up``, ``questline_redis_up``)
    rather than failing the scrape.
    """
    families = await _outbox_gauges(services)
    families += await _redis_gauges(services)
    engines = services.db.engines  # the main pool and the units' one (Database.unit)
    sizes = [getattr(engine.sync_engine.pool, "size", None) for engine in engines]
    families += [
        _gauge(
            "questline_db_pool_waiting",
            "Requests waiting for a database connection (this worker, both pools)",
            sum(_pool_waiting(engine) for engine in engines),
        ),
        _gauge(
            "questline_db_pool_size",
            "Configured database pool size (this worker, both pools)",
            float(sum(size() for size in sizes if callable(size))),
        ),
        _gauge("questline_scrape_timestamp_seconds", "When this scrape was computed", time.time()),
    ]
    return families


async def _outbox_gauges(services: Services) -> list[GaugeMetricFamily]:
    now = services.clock.now()
    pending = (OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at < now + GIVEN_UP_HORIZON)
    given_up = (OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at >= now + GIVEN_UP_HORIZON)
    try:
        async with asyncio.timeout(2.0), services.db.read() as session:
            count, oldest = (
                await session.execute(select(func.count(), func.min(OutboxRow.created_at)).where(*pending))
            ).one()
            abandoned = await session.scalar(select(func.count()).where(*given_up))
    except Exception:  # a database that does not answer is what this scrape reports
        return [_gauge("questline_database_up", "Whether the database answered (1) or not (0)", 0.0)]
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return [
        _gauge("questline_database_up", "Whether the database answered (1) or not (0)", 1.0),
        _gauge("questline_outbox_backlog", "Webhook messages waiting to be delivered", float(count)),
        _gauge("questline_outbox_oldest_undelivered_seconds", "Age of the oldest undelivered message", age),
        _gauge("questline_outbox_given_up", "Messages given up after every retry", float(abandoned or 0)),
    ]


async def _redis_gauges(services: Services) -> list[GaugeMetricFamily]:
    up = await _redis_up(services)
    unready = -1
    if up:
        with contextlib.suppress(Exception):  # a failure here leaves the gauge at -1 (unknown)
            unready = await _unready_brands(services)
    runtime = services.leaderboards
    stale = runtime.catch_up.stale
    behind = max(((services.clock.now() - since).total_seconds() for since in stale.values()), default=0.0)
    return [
        _gauge("questline_redis_up", "Whether Redis answered a PING (1) or not (0)", 1.0 if up else 0.0),
        _gauge(
            "questline_redis_breaker_open",
            "Whether the Redis circuit breaker refuses calls right now (1) or not (0), in this worker",
            1.0 if runtime.breaker.is_open else 0.0,
        ),
        _gauge(
            "questline_boards_stale_brands",
            "Brands whose boards missed Redis writes and are served from SQL until caught up (this worker)",
            float(len(stale)),
        ),
        _gauge(
            "questline_boards_stale_seconds",
            "How long the stalest brand's boards have been behind SQL (0 when Redis holds them all)",
            max(behind, 0.0),
        ),
        _gauge(
            "questline_boards_unready_brands",
            "Brands whose boards are not (yet) rebuilt into Redis; -1 when unknown (Redis or SQL down)",
            float(unready),
        ),
    ]


async def _redis_up(services: Services) -> bool:
    try:
        return bool(await within(services.redis.ping(), 0.5))
    except Exception:  # any failure to answer is "down" for this gauge
        return False


async def _unready_brands(services: Services) -> int:
    """Brands with boards whose sentinel is missing from Redis (one SQL query, one Redis round trip)."""
    from leaderboards import keys
    from leaderboards.rebuild import brands_with_boards

    brands = await brands_with_boards(services.db)
    if not brands:
        return 0
    async with services.redis.pipeline(transaction=False) as pipe:
        for brand_id in brands:
            pipe.exists(keys.ready(services.settings.redis_namespace, brand_id))
        found = await within(pipe.execute(), 1.0)
    return sum(1 for present in found if not present)


def registry() -> CollectorRegistry:
    """The registry to expose: the process's, or every worker's files in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged
    return REGISTRY


def require_scrape_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the endpoint exists only with ``QUESTLINE_METRICS_TOKEN`` set, and needs that Bearer token."""
    token: str = connection.app.state.settings.metrics_token
    if not token:
        raise NotFoundException()
    scheme, _sep, offered = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
        raise NotAuthorizedException("send the scrape token as `Authorization: Bearer <QUESTLINE_METRICS_TOKEN>`")


@get("/metrics", guards=[require_scrape_token], include_in_schema=False, tags=["operations"])
async def metrics_endpoint(request: Request[Any, Any, Any], services: ServicesDep) -> Response[bytes]:
    """Prometheus text exposition of every metric, plus the gauges read at scrape time."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(await live_gauges(services)))
    flush_pending()  # this worker's latest requests; the other workers' are at most FLUSH_SECONDS old
    body = generate_latest(registry()) + generate_latest(snapshot)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def prepare_multiprocess_dir(workers: int) -> str | None:
    """Give this run of several workers an empty metrics directory (``PROMETHEUS_MULTIPROC_DIR``).

    An operator's own directory is emptied (files of a previous run would add to the new counts); without
    one a temporary directory is made. One worker needs none.
    """
    if workers <= 1:
        return None
    chosen = os.environ.get(MULTIPROC_ENV)
    if chosen:
        shutil.rmtree(chosen, ignore_errors=True)
        os.makedirs(chosen, exist_ok=True)
    else:
        chosen = tempfile.mkdtemp(prefix="questline-metrics-")
        os.environ[MULTIPROC_ENV] = chosen
    return chosen


def worker_stopped() -> None:
    """Move the last requests' HTTP metrics; drop this worker's live gauges from the shared directory (multiprocess mode)."""
    flush_pending()  # the counts stay in the worker's file, the in-progress gauge goes with mark_process_dead
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
