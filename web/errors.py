"""The one place errors become HTTP: RFC 9457 problem details for every failure.

``QuestlineError`` subclasses carry their status and the JSON path of the offending field; Litestar's
own HTTP exceptions (404, 405, 413, request validation) are converted by the problem-details plugin.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)

from engine.errors import QuestlineError

PROBLEM_BASE = "https://questline.dev/problems/"


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


def validation_to_problem(exc: ValidationException) -> ProblemDetailsException:
    """Map Litestar's request validation (query, path, headers) to problem details naming the field."""
    errors = exc.extra if isinstance(exc.extra, list) else []
    field = None
    if errors and isinstance(errors[0], dict):
        field = errors[0].get("key")
    extra: dict[str, Any] = {"errors": errors} if errors else {}
    if field:
        extra["field"] = field
    return ProblemDetailsException(
        type_=PROBLEM_BASE + "invalid-input",
        title="Invalid input",
        detail=str(exc.detail),
        status_code=422 if field else 400,
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


def problem_details_plugin() -> ProblemDetailsPlugin:
    """The configured plugin: domain errors, request validation and every HTTP error as problem JSON."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            enable_for_all_http_exceptions=False,
            exception_to_problem_detail_map={
                QuestlineError: questline_to_problem,  # type: ignore[dict-item]
                ValidationException: validation_to_problem,  # type: ignore[dict-item]
                HTTPException: http_to_problem,  # type: ignore[dict-item]
            },
        )
    )
