"""web.http_metrics: the lean middleware moves the same families and labels as Litestar's own."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from web.http_metrics import FLUSH_SECONDS, HttpMetricsMiddleware, flush_pending


@get("/things/{n:int}")
async def thing(n: FromPath[int]) -> dict[str, int]:
    if n == 0:
        raise RuntimeError("boom")
    return {"n": n}


def _app(app_name: str, middleware_class: type[PrometheusMiddleware]) -> Litestar:
    """An app of the one route, counted by ``middleware_class`` under ``app_name``."""
    config = PrometheusConfig(
        app_name=app_name, prefix="questline_http", group_path=True, middleware_class=middleware_class
    )
    return Litestar(route_handlers=[thing], middleware=[config.middleware], debug=False)


def _sample(name: str, app_name: str, **labels: str) -> float:
    wanted = {"app_name": app_name, "method": "GET", "path": "/things/{n}", **labels}
    return REGISTRY.get_sample_value(name, wanted) or 0.0


@pytest.mark.parametrize("middleware_class", [HttpMetricsMiddleware, PrometheusMiddleware])
async def test_counts_durations_errors_and_in_progress_match_litestars_middleware(middleware_class):
    app_name = f"probe-{middleware_class.__name__}"
    async with AsyncTestClient(app=_app(app_name, middleware_class)) as client:
        for n in (1, 2, 0):
            await client.get(f"/things/{n}")
    flush_pending()  # as a scrape does
    assert _sample("questline_http_requests_total", app_name, status_code="200") == 2
    assert _sample("questline_http_requests_total", app_name, status_code="500") == 1
    assert _sample("questline_http_requests_error_total", app_name, status_code="500") == 1
    assert _sample("questline_http_requests_error_total", app_name, status_code="200") == 0
    errors = {
        sample.labels["status_code"]
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "questline_http_requests_error_total" and sample.labels["app_name"] == app_name
    }
    assert errors == {"500"}  # no series for the statuses without errors
    assert _sample("questline_http_request_duration_seconds_count", app_name, status_code="200") == 2
    assert 0 < _sample("questline_http_request_duration_seconds_sum", app_name, status_code="200") < 5
    assert _sample("questline_http_requests_in_progress", app_name, status_code="200") == 0


def test_a_configuration_it_does_not_cover_runs_litestars_code():
    config = PrometheusConfig(app_name="x", prefix="questline_http", labels={"extra": "1"})
    assert not HttpMetricsMiddleware(lambda *a: None, config)._lean  # type: ignore[arg-type]
    assert HttpMetricsMiddleware(lambda *a: None, PrometheusConfig(group_path=True))._lean  # type: ignore[arg-type]


async def test_requests_move_the_metrics_within_the_flush_interval_without_a_scrape():
    app_name = "probe-timer"
    async with AsyncTestClient(app=_app(app_name, HttpMetricsMiddleware)) as client:
        for n in (1, 2, 3):
            await client.get(f"/things/{n}")
        await asyncio.sleep(FLUSH_SECONDS * 3)
        assert _sample("questline_http_requests_total", app_name, status_code="200") == 3
        assert _sample("questline_http_request_duration_seconds_count", app_name, status_code="200") == 3
        assert _sample("questline_http_requests_in_progress", app_name, status_code="200") == 0


async def test_summed_durations_land_in_the_buckets_observe_would_have_chosen():
    """Durations on, between and past the bounds: the same sum and buckets as one observe() each."""
    config = PrometheusConfig(
        app_name="probe-buckets", prefix="questline_http", group_path=True, buckets=[0.01, 0.1, 1]
    )
    middleware = HttpMetricsMiddleware(lambda *a: None, config)  # type: ignore[arg-type]
    reference = Histogram("reference_seconds", "", buckets=[0.01, 0.1, 1], registry=(registry := CollectorRegistry()))
    durations = [0.0, 0.01, 0.010001, 0.05, 0.1, 0.5, 1.0, 1.5, 30.0, 0.003]
    begun = [middleware.begin("GET", "/things/{n}") for _ in durations]
    middleware.flush()
    assert _sample("questline_http_requests_in_progress", "probe-buckets", status_code="200") == len(durations)
    for route, duration in zip(begun, durations, strict=True):
        middleware.end(route, 200, duration)
        reference.observe(duration)
    middleware.flush()
    for bound in ("0.01", "0.1", "1.0", "+Inf"):
        expected = registry.get_sample_value("reference_seconds_bucket", {"le": bound})
        assert (
            _sample("questline_http_request_duration_seconds_bucket", "probe-buckets", status_code="200", le=bound)
            == expected
        )
    assert _sample("questline_http_request_duration_seconds_sum", "probe-buckets", status_code="200") == pytest.approx(
        sum(durations)
    )
    assert _sample("questline_http_requests_total", "probe-buckets", status_code="200") == len(durations)
    assert _sample("questline_http_requests_in_progress", "probe-buckets", status_code="200") == 0


async def test_a_stopping_worker_moves_what_its_last_requests_counted():
    from web.metrics import worker_stopped

    config = PrometheusConfig(app_name="probe-stop", prefix="questline_http", group_path=True)
    middleware = HttpMetricsMiddleware(lambda *a: None, config)  # type: ignore[arg-type]
    middleware.end(middleware.begin("GET", "/things/{n}"), 404, 0.002)
    assert _sample("questline_http_requests_total", "probe-stop", status_code="404") == 0  # not moved yet
    worker_stopped()
    assert _sample("questline_http_requests_total", "probe-stop", status_code="404") == 1
