"""HTTP request metrics: Litestar's Prometheus middleware with the same metrics, minus its per-request costs.

Litestar's :class:`~litestar.plugins.prometheus.PrometheusMiddleware` builds a ``Request`` and its URL for
every request and looks each metric's labelled child up five times (in progress up and down, count,
duration, errors): about a tenth of a board read's server CPU. :class:`HttpMetricsMiddleware` exports the
very same families and labels (``questline_http_requests_total``, ``…_request_duration_seconds``,
``…_requests_in_progress``, ``…_requests_error_total``; ``method``, ``path`` as the route template,
``status_code``, ``app_name``), reads the labels straight from the ASGI scope and keeps the labelled children
it has already made. A configuration it does not cover (extra labels, exemplars, excluded methods, raw
paths) runs Litestar's own code unchanged.

It also moves the shared metrics less often. Each move of a value takes a lock and, in multiprocess mode,
writes the worker's memory-mapped file: five moves per request (in progress up and down, the count, the
duration's sum and bucket) cost a board read about 8% of the server's CPU in an A/B pair on the real
server. The middleware sums its requests in plain integers and moves each value once per
:data:`FLUSH_SECONDS` (and before every scrape: :func:`flush_pending`), by the same amounts the
requests one by one would have moved it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from bisect import bisect_left
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from prometheus_client import Counter, Gauge, Histogram

Children = tuple["Counter", "Histogram"]
"""The count and duration children of one (method, path, status)."""
Route = tuple[str, str]
"""A request's (method, route template)."""
FLUSH_SECONDS = 0.1
"""The longest the requests a worker finished wait before their metrics move (a scrape moves them at once)."""
_LIVE: weakref.WeakSet[HttpMetricsMiddleware] = weakref.WeakSet()


def flush_pending() -> None:
    """Move the metrics of every request this process finished (:meth:`HttpMetricsMiddleware.flush`)."""
    for middleware in list(_LIVE):
        middleware.flush()


class _Done:
    """The finished requests of one (method, path, status) not yet moved: count, duration sum, per bucket."""

    __slots__ = ("bounds", "buckets", "children", "count", "total")

    def __init__(self, children: Children) -> None:
        self.children = children
        self.bounds: list[float] = children[1]._upper_bounds
        self.buckets = [0] * len(self.bounds)
        self.count = 0
        self.total = 0.0

    def add(self, duration: float) -> None:
        self.count += 1
        self.total += duration
        # Histogram.observe's bucket: the first upper bound the amount does not exceed (the last is +Inf).
        self.buckets[bisect_left(self.bounds, duration)] += 1

    def move(self) -> None:
        """Add the sums to the shared values (the histogram's own ``_sum`` and ``_buckets``: no bulk API)."""
        count, timing = self.children
        count.inc(self.count)
        timing._sum.inc(self.total)
        for value, n in zip(timing._buckets, self.buckets, strict=True):
            if n:
                value.inc(n)


class HttpMetricsMiddleware(PrometheusMiddleware):
    """The same metrics as Litestar's middleware, with the labels read from the scope and the children kept."""

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._lean = config.group_path and not (config.labels or config.exemplars or config.excluded_http_methods)
        self._in_progress: dict[Route, Gauge] = {}
        self._done: dict[tuple[str, str, int], Children] = {}
        self._moving: dict[Route, int] = {}
        """Requests begun minus requests ended per route since the last flush."""
        self._finished: dict[tuple[str, str, int], _Done] = {}
        self._timer: asyncio.TimerHandle | None = None
        _LIVE.add(self)

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

        route = self.begin(method, path)
        try:
            await self.app(scope, receive, measured)
        finally:
            self.end(route, span["status"], span["duration"])

    def begin(self, method: str, path: str) -> Route:
        """Count a request of ``method`` on the route template ``path`` in progress; returns its route."""
        route = (method, path)
        self._moving[route] = self._moving.get(route, 0) + 1
        self._due()
        return route

    def abandon(self, route: Route) -> None:
        """A request :meth:`begin` counted is out of progress without an answer (it is counted elsewhere)."""
        self._moving[route] = self._moving.get(route, 0) - 1
        self._due()

    def end(self, route: Route, status: int, duration: float) -> None:
        """The request is done: out of progress, counted with its status, its duration observed."""
        method, path = route
        self._moving[route] = self._moving.get(route, 0) - 1  # begun before the last flush, perhaps
        if status >= 500:  # its own series only once an error happened, as Litestar's middleware does
            labels = self._labels(method, path, status)
            self.requests_error_count(labels).labels(*labels.values()).inc()
        done = self._finished.get((method, path, status))
        if done is None:
            done = self._finished[(method, path, status)] = _Done(self._children(method, path, status))
        done.add(duration)
        self._due()

    def _due(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Move what the requests since the last flush changed: the gauges, the counts, the durations."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for route, change in self._moving.items():
            if change:
                self._gauge(*route).inc(change)
        self._moving.clear()
        for done in self._finished.values():
            done.move()
        self._finished.clear()
