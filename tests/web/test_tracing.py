"""OpenTelemetry: one event's trace in an in-memory exporter; the trace id in log lines and problem responses."""

import json
import logging

import httpx
import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from sqlalchemy import insert

from engine.earning import EarningRuleSpec
from engine.egress import EgressGuard
from engine.metrics import endpoint_label
from engine.orm import OutboxRow
from engine.outbox import OutboxDeliverer
from engine.pipeline import outbox_row
from engine.rules_store import put_rule
from tests.conftest import public_resolver
from tests.helpers import event

STEPS = [
    "segments", "points", "velocity", "referrals", "offers", "challenges", "tiers", "badges", "leaderboards",
    "notifications", "live", "outbox",
]  # fmt: skip
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def exporter():
    return InMemorySpanExporter()


@pytest.fixture
def receiver():
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))


@pytest.fixture
async def traced(backend, settings, redis, clock, exporter, receiver):
    from web.app import create_app

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(
        settings,
        clock=clock,
        redis=redis if backend.endswith("fakeredis") else None,
        http=receiver,
        deliver_webhooks=False,
        tracer_provider=provider,
        resolver=public_resolver,
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client
    provider.shutdown()


async def test_one_event_is_traced_through_request_steps_sql_and_redis(traced, brand, db, clock, exporter):
    await put_rule(
        db, brand_id=brand.brand.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=10), now=clock.now()
    )
    exporter.clear()
    response = await traced.post(
        "/v1/events", json=event("t1", "m1", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert response.status_code == 200, response.text
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind is SpanKind.SERVER]
    assert len(server) == 1 and server[0].name.startswith("POST /v1/events")
    trace_id = server[0].context.trace_id
    same_trace = [s for s in spans if s.context.trace_id == trace_id]
    steps = [s for s in same_trace if s.name.startswith("pipeline.")]
    in_transaction = [s.name for s in steps if s.attributes["questline.phase"] == "process"]
    after_commit = [s.name for s in steps if s.attributes["questline.phase"] == "after_commit"]
    assert in_transaction == [f"pipeline.{name}" for name in STEPS]
    assert after_commit == [f"pipeline.{name}" for name in STEPS]
    sql = [s for s in same_trace if s.kind is SpanKind.CLIENT and "db.statement" in (s.attributes or {})]
    assert any("INSERT INTO event_log" in str(s.attributes["db.statement"]) for s in sql)  # fused on PostgreSQL
    redis_calls = [s for s in same_trace if (s.attributes or {}).get("db.system") == "redis"]
    assert redis_calls, [s.name for s in same_trace]
    by_id = {s.context.span_id: s for s in same_trace}
    points_step = next(s for s in steps if s.name == "pipeline.points")
    assert points_step.parent is not None and points_step.parent.span_id in by_id  # inside the request's trace


async def test_webhook_deliveries_are_traced(traced, brand, db, clock, exporter, receiver):
    created = await traced.post("/v1/webhooks", json={"url": "https://crm.example/hooks"}, headers=brand.headers)
    assert created.status_code == 201
    deliverer = OutboxDeliverer(db, http=receiver, clock=clock, guard=EgressGuard(resolver=public_resolver))
    while await deliverer.deliver_due():  # settle what earlier tests left in the shared database
        pass
    async with db.write() as session:
        await session.execute(
            insert(OutboxRow), [outbox_row(brand_id=brand.brand.id, topic="x.y", data={}, now=clock.now())]
        )
    exporter.clear()
    labels = {"endpoint": endpoint_label(created.json()["id"]), "outcome": "ok"}
    before = REGISTRY.get_sample_value("questline_webhook_deliveries_total", labels) or 0
    assert await deliverer.deliver_due() == 1
    assert REGISTRY.get_sample_value("questline_webhook_deliveries_total", labels) == before + 1  # and counted
    posts = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT and s.name == "POST"]
    assert len(posts) == 1
    assert "crm.example" in str(posts[0].attributes.get("url.full") or posts[0].attributes.get("http.url"))


async def test_the_trace_id_is_in_log_lines_and_problem_responses(traced, caplog):
    caplog.set_level(logging.INFO, logger="questline.access")
    response = await traced.get("/v1/members/nobody", headers={"traceparent": TRACEPARENT})
    assert response.status_code == 401
    problem = response.json()
    assert problem["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"  # the caller's trace continues here
    lines = [r for r in caplog.records if r.name == "questline.access"]
    assert lines, "no access log line"
    rendered = json.dumps([str(r.msg) for r in lines])
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in rendered


async def test_without_tracing_requests_still_get_a_trace_id(client):
    """Tracing off: a fresh id per request, or the caller's from ``traceparent``, in problem responses."""
    first = (await client.get("/v1/members/nobody")).json()["trace_id"]
    second = (await client.get("/v1/members/nobody")).json()["trace_id"]
    assert len(first) == 32 and first != second
    continued = await client.get("/v1/members/nobody", headers={"traceparent": TRACEPARENT})
    assert continued.json()["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_traces_are_exported_over_otlp_only_when_configured():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from engine.settings import load_settings
    from web.tracing import tracer_provider_for

    assert tracer_provider_for(load_settings({})) is None
    settings = load_settings(
        {"QUESTLINE_OTLP_ENDPOINT": "http://collector:4318/v1/traces", "QUESTLINE_SERVICE_NAME": "ql-eu"}
    )
    provider = tracer_provider_for(settings)
    assert provider is not None
    try:
        assert provider.resource.attributes["service.name"] == "ql-eu"
        processors = provider._active_span_processor._span_processors
        exporter = processors[0]._batch_processor._exporter
        assert isinstance(exporter, OTLPSpanExporter) and exporter._endpoint == "http://collector:4318/v1/traces"
    finally:
        provider.shutdown()
