"""web.http_metrics: the lean middleware moves the same families and labels as Litestar's own."""

from __future__ import annotations

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY

from web.http_metrics import HttpMetricsMiddleware


@get("/things/{n:int}")
async def thing(n: FromPath[int]) -> dict[str, int]:
    if n == 0:
        raise RuntimeError("boom")
    return {"n": n}


def _sample(name: str, app_name: str, **labels: str) -> float:
    wanted = {"app_name": app_name, "method": "GET", "path": "/things/{n}", **labels}
    return REGISTRY.get_sample_value(name, wanted) or 0.0


@pytest.mark.parametrize("middleware_class", [HttpMetricsMiddleware, PrometheusMiddleware])
async def test_counts_durations_errors_and_in_progress_match_litestars_middleware(middleware_class):
    app_name = f"probe-{middleware_class.__name__}"
    config = PrometheusConfig(
        app_name=app_name, prefix="questline_http", group_path=True, middleware_class=middleware_class
    )
    app = Litestar(route_handlers=[thing], middleware=[config.middleware], debug=False)
    async with AsyncTestClient(app=app) as client:
        for n in (1, 2, 0):
            await client.get(f"/things/{n}")
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
