"""``GET /metrics``: the scrape token, counters moved by exactly a known workload, scrape-time gauges, workers."""

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from engine.earning import EarningRuleSpec
from engine.orm import OutboxRow
from engine.pipeline import outbox_row
from engine.rules_store import put_rule
from tests.helpers import event

TOKEN = "scrape-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
async def metered(backend, settings, redis, clock):
    """A client on an app with a scrape token, every brand labelled by its slug."""
    from web.app import create_app

    configured = msgspec.structs.replace(settings, metrics_token=TOKEN, metrics_brand_labels=1000)
    app = create_app(
        configured, clock=clock, redis=redis if backend.endswith("fakeredis") else None, deliver_webhooks=False
    )
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def scrape(client: AsyncTestClient[Any]) -> Samples:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_metrics_need_the_scrape_token(client, metered):
    assert (await client.get("/metrics", headers=AUTH)).status_code == 404  # no token configured: no endpoint
    assert (await metered.get("/metrics")).status_code == 401
    wrong = await metered.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert (await metered.get("/metrics", headers=AUTH)).status_code == 200


async def test_counters_move_by_exactly_the_workload(metered, brand, db, clock):
    """Five new events, two duplicates and one refused request move the counters by exactly that."""
    await put_rule(
        db, brand_id=brand.brand.id, spec=EarningRuleSpec(key="visit", event_type="visit", points=10), now=clock.now()
    )
    slug = brand.brand.slug
    before = await scrape(metered)

    batch = [event(f"w{i}", f"m{i}", "visit", "2026-11-20T09:00:00Z") for i in range(5)]
    assert (await metered.post("/v1/events", json={"events": batch}, headers=brand.headers)).status_code == 200
    again = await metered.post("/v1/events", json={"events": batch[:2]}, headers=brand.headers)
    assert [r["duplicate"] for r in again.json()["results"]] == [True, True]
    refused = await metered.post("/v1/events", json={"id": "x", "member": "m0"}, headers=brand.headers)
    assert refused.status_code == 422

    after = await scrape(metered)
    assert moved(before, after, "questline_events_ingested_total", brand=slug) == 5
    assert moved(before, after, "questline_events_duplicate_total", brand=slug) == 2
    assert moved(before, after, "questline_events_refused_total", reason="invalid") == 1
    assert moved(before, after, "questline_points_awarded_total", brand=slug, source="rule") == 50
    assert moved(before, after, "questline_effects_total", effect="points_awarded") == 5
    assert moved(before, after, "questline_challenge_completions_total", brand=slug) == 0
    # one unit of work ran the steps (the duplicates-only request touched none)
    assert moved(before, after, "questline_pipeline_stage_seconds_count", stage="points", phase="process") == 1
    assert (
        moved(before, after, "questline_pipeline_stage_seconds_count", stage="leaderboards", phase="after_commit") == 1
    )
    http = {"method": "POST", "path": "/v1/events", "app_name": "questline"}
    assert moved(before, after, "questline_http_requests_total", status_code="200", **http) == 2
    assert moved(before, after, "questline_http_requests_total", status_code="422", **http) == 1
    assert moved(before, after, "questline_http_request_duration_seconds_count", status_code="200", **http) == 2


async def test_scrape_time_gauges(metered, brand, db, clock):
    """The outbox backlog and its oldest message are read from SQL when scraped; Redis answers."""
    before = await scrape(metered)
    async with db.write() as session:
        row = outbox_row(brand_id=brand.brand.id, topic="test.topic", data={}, now=clock.now() - timedelta(seconds=90))
        await session.execute(insert(OutboxRow), [row])
    after = await scrape(metered)
    assert moved(before, after, "questline_outbox_backlog") == 1
    assert value(after, "questline_outbox_oldest_undelivered_seconds") >= 90
    assert value(after, "questline_redis_up") == 1
    assert value(after, "questline_db_pool_in_use") >= 0
    assert ("questline_db_pool_waiting", frozenset()) in after


_WORKER = """
from engine import metrics
metrics.EVENTS_INGESTED.labels("multi").inc(3)
metrics.DB_POOL_IN_USE.inc(2)
"""


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
def test_workers_are_summed_in_multiprocess_mode(backend, tmp_path, monkeypatch):
    """Two worker processes write their own files; a scrape adds them up."""
    from web.metrics import MULTIPROC_ENV, prepare_multiprocess_dir, registry

    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_stale.db").write_bytes(b"left over by a previous run")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    assert prepare_multiprocess_dir(4) == str(directory)
    assert list(directory.iterdir()) == []  # a previous run's files would add to the new counts
    assert prepare_multiprocess_dir(1) is None
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True, timeout=60)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value for family in registry().collect() for s in family.samples
    }
    assert samples[("questline_events_ingested_total", frozenset({("brand", "multi")}))] == 6
    assert samples[("questline_db_pool_in_use", frozenset())] == 4
