"""Structured logging: readable lines in a terminal, one JSON object per line in production.

The access log is this module's small ASGI middleware, not Litestar's structlog plugin: the plugin's
``LoggingMiddleware`` writes two records per request (the request, then the response) and neither carries
the time the request took, while operators grep and alert on one line per request with method, path
(credentials redacted), status, milliseconds and ``trace_id``. structlog itself renders both.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from engine.settings import Settings
from web.tracing import add_trace_id

#: Path parts that are credentials: a portal link's signed token signs a member in, a join confirmation's
#: enrols and signs in, an unsubscribe link's changes what a member receives.
_SECRET_PATHS = re.compile(r"^(/portal/enter/|/join/[^/?#]+/confirm/|/unsubscribe/)[^/?#]+")


def redact_path(path: str) -> str:
    """``path`` with any credential in it replaced by ``[redacted]`` (what access logs may keep)."""
    return _SECRET_PATHS.sub(r"\1[redacted]", path)


def configure_logging(settings: Settings) -> None:
    """Route stdlib and structlog records through one renderer chosen by ``settings.log_format``."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(
            # A plain traceback: rich's pretty one prints local variables (request headers with API keys) and
            # takes about a second to render, which a request that logs a failure would wait for.
            colors=False,
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_id,  # the request's trace id is bound by web.tracing.TraceIdMiddleware; else the span's
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_questline", False):
            root.removeHandler(existing)
    handler._questline = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # calls below the level return at once instead of running the processors
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, settings.log_level.upper())),
        cache_logger_on_first_use=True,
    )


class AccessLogMiddleware:
    """One structured log line per HTTP request: method, path (tokens redacted), status, duration (ASGI middleware).

    The query string is never logged: widget member tokens and publishable keys travel there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("questline.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and log it once the response has started."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            log_request(self.log, scope, status, started)


def log_request(logger: Any, scope: Scope, status: int, started: float) -> None:
    """The access log's line of one request: method, path (tokens redacted), status, milliseconds since ``started``."""
    if not logger.is_enabled_for(logging.INFO):
        return  # below the configured level: nothing to redact or round
    logger.info(
        "request",
        method=scope.get("method"),
        path=redact_path(str(scope.get("path", ""))),
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 2),
    )
