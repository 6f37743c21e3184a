"""The review queue: events held by velocity limits, approved (applied once) or rejected by the brand."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import FromPath, QueryParameter

from engine import audit, review
from engine.review import HeldEvent, ReviewPage
from web.api.event_intake import to_out
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.schemas.events import EventResultOut


class ReviewController(Controller):
    """``GET /v1/review``, ``POST /v1/review/{id}/approve|reject`` (secret key)."""

    path = "/v1/review"
    tags = ("review",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="Events held for review")
    async def list_held(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        status: Annotated[
            Literal["pending_review", "approved", "rejected"],
            QueryParameter(description="Which events: waiting (default), approved or rejected."),
        ] = "pending_review",
        after: Annotated[
            int | None, QueryParameter(ge=1, le=2**62, description="Cursor: events after this id.")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Events per page.")] = 50,
    ) -> ReviewPage:
        """Held events, oldest first, with the reason (the velocity limit) and the original payload."""
        async with services.db.read() as session:
            return await review.queue(session, brand_id=principal.brand.id, status=status, after=after, limit=limit)

    @post("/{held_id:int}/approve", status_code=200, summary="Approve a held event (applied once)")
    async def approve(self, held_id: FromPath[int], services: ServicesDep, principal: PrincipalDep) -> EventResultOut:
        """Apply the original event through the pipeline; approving again answers the same result as a duplicate."""
        result = await review.approve(
            services.db, services.pipeline, brand=principal.brand, held_id=held_id,
            actor=audit.key_actor(principal.prefix), now=services.clock.now(),
        )  # fmt: skip
        return to_out(result)

    @post("/{held_id:int}/reject", status_code=200, summary="Reject a held event (never applied)")
    async def reject(self, held_id: FromPath[int], services: ServicesDep, principal: PrincipalDep) -> HeldEvent:
        """Mark the event rejected; 409 when it was already decided."""
        return await review.reject(
            services.db, brand=principal.brand, held_id=held_id,
            actor=audit.key_actor(principal.prefix), now=services.clock.now(),
        )  # fmt: skip
