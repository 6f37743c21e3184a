"""The one place errors become HTTP: RFC 9457 problem details for every failure.

``QuestlineError`` subclasses carry their status and the JSON path of the offending field; Litestar's
own HTTP exceptions (404, 405, 413, request validation) are converted by the problem-details plugin.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from engine.errors import QuestlineError
from web.tracing import with_trace_id
from web.unavailable import unavailable_map

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
        415: "unsupported-media-type",
        401: "authentication-required",
        400: "bad-request",
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


def unexpected_to_problem(exc: Exception) -> ProblemDetailsException:
    """Any other exception is a bug: log it with its traceback and answer a 500 problem that hides the details."""
    log.error("unhandled %s: %s", type(exc).__name__, exc, exc_info=exc)
    return ProblemDetailsException(
        type_=PROBLEM_BASE + "internal-error",
        title="Internal server error",
        detail="an unexpected error occurred; it has been logged",
        status_code=500,
    )


def problem_details_plugin() -> ProblemDetailsPlugin:
    """The configured plugin: domain errors, request validation and every HTTP error as problem JSON."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=False,
            exception_to_problem_detail_map={
                QuestlineError: with_trace_id(questline_to_problem),
                ValidationException: with_trace_id(validation_to_problem),
                HTTPException: with_trace_id(http_to_problem),
                Exception: with_trace_id(unexpected_to_problem),
                **{kind: with_trace_id(mapper) for kind, mapper in unavailable_map(PROBLEM_BASE).items()},
            },
        )
    )
