"""The one place errors become HTTP: RFC 9457 problem details for every failure.

``QuestlineError`` subclasses carry their status and the JSON path of the offending field; Litestar's
own HTTP exceptions (404, 405, 413, request validation) are converted by the problem-details plugin.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis.exceptions
import sqlalchemy.exc
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from engine.errors import QuestlineError, ServiceUnavailable

PROBLEM_BASE = "https://questline.dev/problems/"
log = logging.getLogger("questline.errors")


def questline_to_problem(exc: QuestlineError) -> ProblemDetailsException:
    """Map a domain error to its problem details."""
    extra: dict[str, Any] = {}
    if exc.field is not None:
        extra["field"] = exc.field
    return ProblemDetailsException(
        type_=PROBLEM_BASE + exc.slug,
        title=exc.title,
        detail=exc.detail,
        status_code=exc.status,
        extra=extra or None,
    )


_BACKTICK = re.compile(r"`([^`]+)`")


def _error_field(error: dict[str, Any]) -> str | None:
    key = error.get("key")
    source = error.get("source")
    if source != "body":
        return str(key) if key else None
    message = str(error.get("message", ""))
    base = f"$.{key}" if key and key != "data" else "$"
    # "Object missing required field `kind`": the path points at the object, so name the field too
    found = _BACKTICK.search(message)
    if found and ("missing required field" in message or "unknown field" in message):
        return f"{base}.{found.group(1)}"
    return base


def validation_to_problem(exc: ValidationException) -> ProblemDetailsException:
    """Map Litestar's request validation (body, query, path, headers) to problem details naming the field."""
    errors = [e for e in exc.extra if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    extra: dict[str, Any] = {"errors": errors} if errors else {}
    detail = str(exc.detail)
    if errors:
        field = _error_field(errors[0])
        if field:
            extra["field"] = field
        detail = f"{errors[0].get('message', detail)} (at {field or errors[0].get('source', 'request')})"
    return ProblemDetailsException(
        type_=PROBLEM_BASE + "invalid-input",
        title="Invalid input",
        detail=detail,
        status_code=422 if errors else 400,
        extra=extra or None,
    )


def http_to_problem(exc: HTTPException) -> ProblemDetailsException:
    """Map any other HTTP exception (404, 405, 413…) to problem details."""
    slug = {
        404: "not-found",
        405: "method-not-allowed",
        413: "payload-too-large",
        401: "authentication-required",
    }
    return ProblemDetailsException(
        type_=PROBLEM_BASE + slug.get(exc.status_code, "http-error"),
        title=exc.detail if exc.status_code >= 500 else _title(exc.status_code),
        detail=str(exc.detail),
        status_code=exc.status_code,
        headers=exc.headers,
    )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# --- a dependency that does not answer: 503 with Retry-After, never a 500 or a hang ----------------------

RETRY_AFTER_SECONDS = 5
"""What ``Retry-After`` says when a dependency is down (the Redis breaker's cool-down is about as long)."""
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset (the builtin, not redis-py's)
    TimeoutError,  # connect timeout (asyncio.TimeoutError is the same class)
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError…
    asyncpg.exceptions.OperatorInterventionError,  # AdminShutdownError (terminated), CannotConnectNowError (starting)
    sqlalchemy.exc.TimeoutError,  # no pooled connection in time
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says a dependency is unreachable rather than that the request was wrong."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, _UNAVAILABLE):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, asyncpg.InterfaceError) and "closed" in str(seen):
            return True
        orig = seen.orig if isinstance(seen, sqlalchemy.exc.DBAPIError) else None
        seen = orig if isinstance(orig, BaseException) else (seen.__cause__ or seen.__context__)
    return False


def unavailable_to_problem(exc: Exception) -> ProblemDetailsException:
    """503 with ``Retry-After`` for a dependency that does not answer; any other database error is a logged 500."""
    if isinstance(exc, ServiceUnavailable):
        detail, retry_after = exc.detail, exc.retry_after
    elif is_unavailable(exc):
        detail, retry_after = "a dependency (database or Redis) does not answer; retry shortly", RETRY_AFTER_SECONDS
        # The first line only: the rest may quote the statement's parameters (personal data).
        log.warning("dependency unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0][:200])
    else:
        log.error("unexpected database error", exc_info=exc)
        return ProblemDetailsException(
            type_=PROBLEM_BASE + "internal-error", title="Internal error", detail="internal error", status_code=500
        )
    return ProblemDetailsException(
        type_=PROBLEM_BASE + ServiceUnavailable.slug,
        title=ServiceUnavailable.title,
        detail=detail,
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


UNAVAILABLE_MAP: dict[type[Exception], Any] = {
    error: unavailable_to_problem
    for error in (ServiceUnavailable, sqlalchemy.exc.DBAPIError, *_UNAVAILABLE)
    if issubclass(error, Exception)
}
"""The exception types :func:`unavailable_to_problem` maps (registered with the problem-details plugin)."""


def problem_details_plugin() -> ProblemDetailsPlugin:
    """The configured plugin: domain errors, request validation and every HTTP error as problem JSON."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=False,
            exception_to_problem_detail_map={
                QuestlineError: questline_to_problem,
                ValidationException: validation_to_problem,
                HTTPException: http_to_problem,
                **UNAVAILABLE_MAP,
            },
        )
    )
