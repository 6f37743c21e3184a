"""OpenTelemetry traces (off unless ``QUESTLINE_OTLP_ENDPOINT`` is set) and the trace id of every request.

With an endpoint, each request gets a span from Litestar's OpenTelemetry plugin, each pipeline step a
child span (``pipeline.<step>``, from :class:`web.metrics.PipelineMetrics`), and SQL statements, Redis
commands and webhook deliveries (httpx) spans from the OpenTelemetry instrumentation packages, exported
over OTLP/HTTP in batches.

Whether or not traces are exported, :class:`TraceIdMiddleware` gives every request a trace id (the
span's, else the caller's ``traceparent``, else a new one), binds it to the log context so every log line
of the request carries ``trace_id``, and problem responses carry it as a ``trace_id`` member.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import structlog
from litestar.enums import ScopeType
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.settings import Settings

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_EXCLUDE = ["^/metrics", "^/static", "^/health"]


def tracer_provider_for(settings: Settings) -> TracerProvider | None:
    """An SDK tracer provider exporting over OTLP/HTTP to ``settings.otlp_endpoint``; None when unset."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint)))
    return provider


def tracing_plugin(provider: TracerProvider) -> OpenTelemetryPlugin:
    """Litestar's OpenTelemetry plugin: one server span per request (not for metrics, static files, health)."""
    return OpenTelemetryPlugin(
        OpenTelemetryConfig(tracer_provider=provider, exclude=_EXCLUDE, exclude_spans=["receive", "send"])
    )


@contextmanager
def instrumented(
    provider: TracerProvider | None, *, engines: Sequence[AsyncEngine], redis: Redis, http: httpx.AsyncClient
) -> Iterator[None]:
    """Trace SQL statements, Redis commands and outgoing HTTP (webhooks) of these clients while inside."""
    if provider is None:
        yield
        return
    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", tracer_provider=provider)
    usage = NoOpMeter("questline").create_up_down_counter("db.client.connections.usage")
    sql = [EngineTracer(tracer, engine.sync_engine, usage) for engine in engines]  # type: ignore[no-untyped-call]
    RedisInstrumentor.instrument_client(redis, tracer_provider=provider)
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=provider)
    try:
        yield
    finally:
        HTTPXClientInstrumentor.uninstrument_client(http)
        RedisInstrumentor.uninstrument_client(redis)
        for tracer_of_engine in sql:
            tracer_of_engine.remove_all_event_listeners()  # type: ignore[no-untyped-call]


def _from_traceparent(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            found = _TRACEPARENT.match(value.decode("latin-1").strip())
            return found.group(1) if found else None
    return None


def span_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), if a span is recording or was propagated."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    """The trace id of the request being handled (or of the current span outside requests)."""
    bound = structlog.contextvars.get_contextvars().get("trace_id")
    return str(bound) if bound else span_trace_id()


def add_trace_id(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Structlog processor: put the current trace id on the line (when one is known)."""
    if "trace_id" not in event_dict:
        found = span_trace_id()
        if found:
            event_dict["trace_id"] = found
    return event_dict


def trace_id_of(scope: Scope) -> str:
    """A request's trace id: the current span's, else its ``traceparent``'s, else a new one.

    A new one is 128 bits from :mod:`random`, which reseeds in each forked worker (W3C trace context asks
    for random ids, not secret ones; ``secrets`` costs a system call per request, a few per cent of a board
    read's CPU).
    """
    return span_trace_id() or _from_traceparent(scope) or f"{random.getrandbits(128) or 1:032x}"


class TraceIdMiddleware:
    """Bind the request's trace id to the log context for the request's duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Choose the trace id (span, ``traceparent``, else new) and run the request with it bound."""
        if scope["type"] not in (ScopeType.HTTP, ScopeType.WEBSOCKET):
            await self.app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(trace_id=trace_id_of(scope)):
            await self.app(scope, receive, send)


def with_trace_id(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap an exception-to-problem mapper so the problem carries the request's ``trace_id``."""

    def mapped(exc: Any) -> Any:
        problem = convert(exc)
        trace_id = current_trace_id()
        if trace_id and (problem.extra is None or isinstance(problem.extra, dict)):
            problem.extra = {**(problem.extra or {}), "trace_id": trace_id}
        return problem

    return mapped
