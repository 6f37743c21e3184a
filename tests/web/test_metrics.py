"""``GET /metrics``: the scrape token, counters moved by exactly a known workload, scrape-time gauges, workers."""

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
import yaml
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from engine import metrics
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


EXPIRING = {
    "points": {"expiry": {"kind": "rolling", "months": 1}},
    "earning_rules": [
        {"key": "visit", "event_type": "visit", "points": 10},
        {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}},
    ],
}


async def test_outcomes_outside_the_pipeline_move_by_exactly_the_workload(metered, brand, clock, db):
    """Adjustments, a redemption, a badge grant, tier changes (event, override, review job) and an expiry job.

    Repeats (the same idempotency key, a second grant) and refusals (too few points) move nothing.
    """
    from tiers import service as tiers_service
    from web.wiring import points_round

    # the jobs on this test's own loop (the app's connections live on the test client's loop)
    services = SimpleNamespace(db=db, clock=clock, outbox=SimpleNamespace(notify=lambda: None))
    label, headers, now = metrics.brand_label(brand.brand), brand.headers, clock.now()
    assert (await metered.put("/v1/program", json=EXPIRING, headers=headers)).status_code == 200
    await metered.put("/v1/tiers/silver", json={"key": "silver", "threshold": 0}, headers=headers)
    assert (await metered.put("/v1/tiers/gold", json={"key": "gold", "threshold": 100}, headers=headers)).is_success
    await metered.put(
        "/v1/rewards/coffee", json={"name": {"en": "Coffee"}, "cost": 60, "type": "product"}, headers=headers
    )
    await metered.put(
        "/v1/rewards/big", json={"name": {"en": "Car"}, "cost": 10_000, "type": "product"}, headers=headers
    )
    assert (
        await metered.put("/v1/badges/vip", json={"key": "vip", "name": "VIP", "points": 40}, headers=headers)
    ).is_success
    await metered.post("/v1/members", json={"external_id": "m"}, headers=headers)
    before = await scrape(metered)

    for points in (500, -20):
        adjusted = await metered.post(
            "/v1/members/m/points/adjustments", json={"points": points, "reason": "ops"}, headers=headers
        )
        assert adjusted.status_code == 201, adjusted.text
    for reward, key, status in (("coffee", "k1", 201), ("coffee", "k1", 200), ("big", "k2", 409)):
        redeemed = await metered.post(
            "/v1/members/m/redemptions", json={"reward": reward, "idempotency_key": key}, headers=headers
        )
        assert redeemed.status_code == status, redeemed.text
    for _ in range(2):
        await metered.post("/v1/members/m/badges/vip/grant", json={"reason": "welcome"}, headers=headers)
    # tiers: an event upgrades m to gold (pipeline), an override moves m to silver, the review job back to gold
    sent = await metered.post(
        "/v1/events", json=event("p1", "m", "purchase", now.isoformat(), amount=120), headers=headers
    )
    assert sent.status_code == 200, sent.text
    until = (now + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    overridden = await metered.post(
        "/v1/members/m/tier", json={"tier": "silver", "until": until, "reason": "test"}, headers=headers
    )
    assert overridden.status_code == 200, overridden.text
    # a visit 40 days ago: its lot is past its month when the points job runs
    old = event("v1", "e", "visit", (now - timedelta(days=40)).isoformat())
    assert (await metered.post("/v1/events", json=old, headers=headers)).status_code == 200
    clock.advance(timedelta(days=2))
    await tiers_service.evaluate(db, brand=brand.brand, now=clock.now())
    await points_round(services)

    after = await scrape(metered)
    assert moved(before, after, "questline_points_awarded_total", brand=label, source="adjustment") == 500
    assert moved(before, after, "questline_points_deducted_total", brand=label) == 20
    assert moved(before, after, "questline_redemptions_total", brand=label) == 1
    assert moved(before, after, "questline_points_spent_total", brand=label) == 60
    assert moved(before, after, "questline_badge_awards_total", brand=label) == 1
    assert moved(before, after, "questline_points_awarded_total", brand=label, source="badge") == 40
    # m: none → gold (event), gold → silver (override), silver → gold (review); e: none → silver (its first visit)
    assert moved(before, after, "questline_tier_changes_total", brand=label) == 4
    assert moved(before, after, "questline_points_expired_total", brand=label) == 10
    assert moved(before, after, "questline_events_ingested_total", brand=label) == 2


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


_FORKING_WORKER = """
import os

calls = []
getpid = os.getpid
os.getpid = lambda: calls.append(1) or getpid()  # before prometheus-client takes it as its default
from engine import metrics

calls.clear()
for _ in range(10):
    metrics.EVENTS_INGESTED.labels("forked").inc()
assert calls == [], calls  # no system call per move of a value
os.getpid = getpid
child = os.fork()
if child == 0:  # a forked child writes its own file, as prometheus-client's own pid check had it
    metrics.EVENTS_INGESTED.labels("forked").inc(5)
    os._exit(0)
assert os.waitpid(child, 0)[1] == 0
print(getpid(), child)
"""


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
def test_multiprocess_values_check_for_a_fork_without_a_system_call_per_move(backend, tmp_path, monkeypatch):
    from web.metrics import MULTIPROC_ENV, registry

    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    run = subprocess.run([sys.executable, "-c", _FORKING_WORKER], env=env, timeout=60, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    parent, child = run.stdout.split()
    counters = sorted(p.name for p in directory.iterdir() if p.name.startswith("counter_"))
    assert counters == sorted([f"counter_{parent}.db", f"counter_{child}.db"])
    samples = {
        (s.name, frozenset(s.labels.items())): s.value for family in registry().collect() for s in family.samples
    }
    assert samples[("questline_events_ingested_total", frozenset({("brand", "forked")}))] == 15


DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bquestline_[a-z0-9_]+")
DURATION = re.compile(r"^\d+[smhd]$")


def exported_names(text: str) -> set[str]:
    """Every series name a scrape can show: samples, plus the series of each declared family."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            names |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
async def test_alert_rules_load_and_use_exported_metrics(backend, metered, tmp_path):
    assert (await metered.get("/health")).status_code == 200  # the HTTP families appear with the first request
    names = exported_names((await metered.get("/metrics", headers=AUTH)).text)
    text = (DOCS / "prometheus-alerts.yml").read_text()
    groups = yaml.safe_load(text)["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    used: set[str] = set()
    for rule in rules:
        assert {"alert", "expr", "for", "labels", "annotations"} <= rule.keys(), rule
        assert DURATION.match(rule["for"]) and rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        metrics = set(METRIC.findall(rule["expr"]))
        assert metrics and metrics <= names, (rule["alert"], metrics - names)
        used |= metrics
    # what the issue asks to alert on: outbox backlog growing, boards stale, error rate, p99 latency
    assert {
        "questline_outbox_backlog",
        "questline_boards_unready_brands",
        "questline_http_requests_total",
        "questline_http_request_duration_seconds_bucket",
    } <= used
    assert len({r["alert"] for r in rules}) == len(rules)
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "rules", str(DOCS / "prometheus-alerts.yml")], timeout=60)
        assert checked.returncode == 0


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
async def test_grafana_dashboard_loads_and_queries_exported_metrics(backend, metered):
    assert (await metered.get("/health")).status_code == 200  # the HTTP families appear with the first request
    names = exported_names((await metered.get("/metrics", headers=AUTH)).text)
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["uid"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels) >= 10
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}  # imports without edits
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["targets"]
        for target in panel["targets"]:
            metrics = set(METRIC.findall(target["expr"]))
            assert metrics and metrics <= names, (panel["title"], metrics - names)


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
async def test_boards_missing_from_redis_are_counted(backend, metered, brand, redis, settings):
    from leaderboards import keys
    from leaderboards.models import BoardSpec, PointsMetric

    services = metered.app.state.services
    await services.leaderboards.put_board(
        brand.brand, BoardSpec(key="weekly", title="Weekly", metric=PointsMetric(), period="weekly")
    )
    try:
        ready = keys.ready(settings.redis_namespace, brand.brand.id)
        assert await redis.exists(ready)  # defining the board rebuilt the brand into Redis
        before = await scrape(metered)
        await redis.delete(ready)  # as after a flush or a Redis restart
        after = await scrape(metered)
        assert moved(before, after, "questline_boards_unready_brands") == 1
    finally:
        await services.leaderboards.delete_board(brand.brand, "weekly")


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"])
async def test_a_database_that_does_not_answer_is_reported_not_raised(backend, metered):
    from contextlib import asynccontextmanager

    from web.metrics import live_gauges

    real = metered.app.state.services

    class Down:
        engine = real.db.engine
        engines = (real.db.engine,)

        @asynccontextmanager
        async def read(self):
            raise ConnectionRefusedError("database down")
            yield

    class Services:
        clock, redis, settings, leaderboards, db = real.clock, real.redis, real.settings, real.leaderboards, Down()

    gauges = {family.name: family.samples[0].value for family in await live_gauges(Services())}
    assert gauges["questline_database_up"] == 0
    assert "questline_outbox_backlog" not in gauges
    assert gauges["questline_redis_up"] == 1


async def test_breaker_and_board_staleness_gauges(metered, brand, clock):
    """A board write that missed Redis shows as a stale brand, behind SQL for as long as it has been stale."""
    runtime = metered.app.state.services.leaderboards
    healthy = await scrape(metered)
    assert value(healthy, "questline_redis_breaker_open") == 0
    assert value(healthy, "questline_boards_stale_brands") == 0
    assert value(healthy, "questline_boards_stale_seconds") == 0
    runtime.catch_up.mark(brand.brand.id, ConnectionError("Redis did not answer"))
    clock.advance(timedelta(seconds=42))
    stale = await scrape(metered)
    assert value(stale, "questline_boards_stale_brands") == 1
    assert value(stale, "questline_boards_stale_seconds") == 42
    for _ in range(runtime.breaker.failures):
        runtime.breaker.failure()
    assert value(await scrape(metered), "questline_redis_breaker_open") == 1


async def test_counts_land_on_commit_only(db, brand):
    """A rolled-back transaction, or savepoint, counts nothing; a committed one counts what it recorded."""
    counter, label = metrics.REDEMPTIONS, metrics.brand_label(brand.brand)

    def count() -> float:
        return counter.labels(label)._value.get()

    async def refused() -> None:
        async with db.write() as session:
            metrics.count_on_commit(session, counter, brand.brand, amount=5)
            raise RuntimeError("refused")

    async def savepoint_refused(session) -> None:
        async with session.begin_nested():
            metrics.count_on_commit(session, counter, brand.brand, amount=10)
            raise RuntimeError("the savepoint rolls back")

    start = count()
    with pytest.raises(RuntimeError):
        await refused()
    assert count() == start
    async with db.write() as session:
        metrics.count_on_commit(session, counter, brand.brand)
        with pytest.raises(RuntimeError):
            await savepoint_refused(session)
        async with session.begin_nested():
            metrics.count_on_commit(session, counter, brand.brand, amount=2)
        assert count() == start  # nothing before the commit
    assert count() == start + 3
