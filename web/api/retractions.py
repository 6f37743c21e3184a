"""``POST /v1/events/{id}/retract``: undo an event everywhere, exactly once (see :mod:`engine.retraction`)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, post
from litestar.di import Provide
from litestar.params import Body, FromPath

from engine.retraction_models import api_request_key
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.schemas.retractions import RetractIn, RetractionOut

_DESCRIPTION = (
    "Undoes the event's points (a partial `amount` takes back that share of them), re-folds the member's "
    "challenge progress without it, takes it off boards and the tier counter, and handles completions by the "
    "program's `retraction.completions` policy. Exactly once: a second whole retraction answers the first "
    "(`duplicate: true`). An unknown id answers 404, or with `if_unknown: remember` is kept (202) and applied "
    "when the event arrives."
)


class RetractionsController(Controller):
    """Retraction of events (secret key)."""

    path = "/v1/events"
    tags = ("events",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @post(
        "/{event_id:str}/retract",
        summary="Retract an event (a refund, a deleted review)",
        description=_DESCRIPTION,
        status_code=200,
        responses=answers(202, RetractionOut, "The event is not known yet: the retraction is kept for it"),
    )
    async def retract(
        self,
        event_id: FromPath[str],
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        data: Annotated[RetractIn | None, Body(title="Retraction")] = None,
    ) -> Response[RetractionOut]:
        """Retract the event ``event_id`` (whole, or part of its ``amount``)."""
        body = data or RetractIn()
        done = await services.retractions.request(
            principal.brand,
            event_key=event_id,
            amount=body.amount,
            reason=body.reason,
            source="api",
            request_key=api_request_key(
                event_id, amount=body.amount, idempotency_key=request.headers.get("idempotency-key")
            ),
            remember=body.if_unknown == "remember",
        )
        out = RetractionOut(
            event=done.event, status=done.status, duplicate=done.duplicate, amount=done.amount, reason=done.reason,
            source=done.source, received_at=done.received_at, applied_at=done.applied_at, applied_to=done.applied_to,
            outcome=done.outcome,
        )  # fmt: skip
        return Response(out, status_code=202 if done.status == "pending" else 200)
