"""HTTP request metrics: Litestar's Prometheus middleware with the same metrics, minus its per-request costs.

Litestar's :class:`~litestar.plugins.prometheus.PrometheusMiddleware` builds a ``Request`` and its URL for
every request and looks each metric's labelled child up five times (in progress up and down, count,
duration, errors): about a tenth of a board read's server CPU. :class:`HttpMetricsMiddleware` exports the
very same families and labels (``questline_http_requests_total``, ``…_request_duration_seconds``,
``…_requests_in_progress``, ``…_requests_error_total``; ``method``, ``path`` as the route template,
``status_code``, ``app_name``), reads the labels straight from the ASGI scope and keeps the labelled children
it has already made. A configuration it does not cover (extra labels, exemplars, excluded methods, raw
paths) runs Litestar's own code unchanged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from prometheus_client import Counter, Gauge, Histogram

Children = tuple["Counter", "Histogram"]
"""The count and duration children of one (method, path, status)."""


class HttpMetricsMiddleware(PrometheusMiddleware):
    """The same metrics as Litestar's middleware, with the labels read from the scope and the children kept."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._lean = config.group_path and not (config.labels or config.exemplars or config.excluded_http_methods)
        self._in_progress: dict[tuple[str, str], Gauge] = {}
        self._done: dict[tuple[str, str, int], Children] = {}

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    def _gauge(self, method: str, path: str) -> Gauge:
        found = self._in_progress.get((method, path))
        if found is None:
            labels = self._labels(method, path, 200)
            found = self._in_progress[(method, path)] = self.requests_in_progress(labels).labels(*labels.values())
        return found

    def _children(self, method: str, path: str, status: int) -> Children:
        found = self._done.get((method, path, status))
        if found is None:
            labels = self._labels(method, path, status)
            values = [*labels.values()]
            found = (self.request_count(labels).labels(*values), self.request_time(labels).labels(*values))
            if len(self._done) < 10_000:  # route templates × methods × statuses: bounded, but stay safe
                self._done[(method, path, status)] = found
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request, time it to its last body message, and keep it in progress meanwhile."""
        if not self._lean:
            await super().__call__(scope, receive, send)
            return
        method = scope["method"] if scope["type"] == ScopeType.HTTP else str(scope["type"])
        path: str = scope["path_template"]
        started = time.perf_counter()
        span: dict[str, Any] = {"status": 200, "duration": 0.0}

        async def measured(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                span["status"] = message["status"]  # type: ignore[typeddict-item]
            elif kind == "http.response.body":
                span["duration"] = time.perf_counter() - started
            await send(message)

        gauge = self.begin(method, path)
        try:
            await self.app(scope, receive, measured)
        finally:
            self.end(gauge, method, path, span["status"], span["duration"])

    def begin(self, method: str, path: str) -> Gauge:
        """Count a request of ``method`` on the route template ``path`` in progress; returns its gauge."""
        gauge = self._gauge(method, path)
        gauge.inc()
        return gauge

    def end(self, gauge: Gauge, method: str, path: str, status: int, duration: float) -> None:
        """The request is done: out of progress, counted with its status, its duration observed."""
        gauge.dec()
        count, timing = self._children(method, path, status)
        if status >= 500:  # its own series only once an error happened, as Litestar's middleware does
            labels = self._labels(method, path, status)
            self.requests_error_count(labels).labels(*labels.values()).inc()
        count.inc()
        timing.observe(duration)
