"""The error hierarchy of Questline.

Domain code raises these; ``web/errors.py`` alone turns them into RFC 9457 problem details::

    QuestlineError
    ├── ValidationError        bad input; carries the JSON path of the offending field  (422)
    │   └── DefinitionError    a rule/campaign/badge/board definition that cannot become active (422)
    ├── AuthenticationError    missing, unknown or revoked key                          (401)
    ├── PermissionDenied       the key is valid but may not do this (e.g. publishable)  (403)
    ├── NotFound               no such resource in this brand                           (404)
    ├── Conflict               the resource exists or is being changed concurrently     (409)
    │   └── InsufficientPoints a spend or debit beyond the member's available points      (409)
    ├── PayloadTooLarge        body, batch or field over a limit                        (413)
    └── ServiceUnavailable     the database or Redis does not answer right now          (503)
"""

from __future__ import annotations


class QuestlineError(Exception):
    """Root of every error Questline raises on purpose."""

    status = 500
    title = "Internal error"
    slug = "internal-error"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class ValidationError(QuestlineError):
    """Input that does not satisfy the schema or a business limit."""

    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class DefinitionError(ValidationError):
    """A definition (rule, campaign, badge, board) that is not valid."""

    title = "Invalid definition"
    slug = "invalid-definition"


class AuthenticationError(QuestlineError):
    """No usable API key was presented."""

    status = 401
    title = "Authentication required"
    slug = "authentication-required"


class PermissionDenied(QuestlineError):
    """The key is valid but does not allow this operation."""

    status = 403
    title = "Permission denied"
    slug = "permission-denied"


class NotFound(QuestlineError):
    """No such resource within the caller's brand."""

    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(QuestlineError):
    """The request conflicts with the current state."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class InsufficientPoints(Conflict):
    """A spend, redemption or negative adjustment larger than the member's available points."""

    title = "Not enough points"
    slug = "insufficient-points"


class PayloadTooLarge(QuestlineError):
    """A body, batch or field exceeds a configured limit."""

    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class ServiceUnavailable(QuestlineError):
    """A dependency (the database, Redis) does not answer right now; retry after ``retry_after`` seconds (503)."""

    status = 503
    title = "Service unavailable"
    slug = "service-unavailable"

    def __init__(self, detail: str, *, field: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, field=field)
        self.retry_after = retry_after
