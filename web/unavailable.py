"""A dependency that does not answer becomes a 503 problem with ``Retry-After``, never a 500 or a hang.

Registered by :func:`web.errors.problem_details_plugin`. A lost or refused PostgreSQL connection
(asyncpg's connection errors, a backend terminated by the administrator or still starting, SQLAlchemy's
invalidated connections and pool timeouts), a Redis connection error or timeout, and
:class:`engine.errors.ServiceUnavailable` answer ``503 Service Unavailable``; any other database error
is a logged 500 problem.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis.exceptions
import sqlalchemy.exc
from litestar.plugins.problem_details import ProblemDetailsException

from engine.errors import ServiceUnavailable

log = logging.getLogger("questline.errors")
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


def unavailable_map(problem_base: str) -> dict[type[Exception], Any]:
    """The exception types mapped here, each to its converter (``problem_base`` prefixes the problem type)."""

    def to_problem(exc: Exception) -> ProblemDetailsException:
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
                type_=problem_base + "internal-error", title="Internal error", detail="internal error", status_code=500
            )
        return ProblemDetailsException(
            type_=problem_base + ServiceUnavailable.slug,
            title=ServiceUnavailable.title,
            detail=detail,
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    return {
        error: to_problem
        for error in (ServiceUnavailable, sqlalchemy.exc.DBAPIError, *_UNAVAILABLE)
        if issubclass(error, Exception)
    }
