"""Console pages of the hardening features: the review queue (held events) and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from engine import audit, review
from engine.audit import admin_actor
from web.exports import build_export, export_page
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render

Status = Literal["pending_review", "approved", "rejected"]
AUDIT_ACTIONS = ("program.", "key.", "points.", "member.", "review.", "badge.", "webhook.", "reward.")


class ReviewPageController(Controller):
    """Events held by velocity limits: approve (applied once) or reject."""

    path = "/console/review"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def queue(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        status: Annotated[Status, QueryParameter()] = "pending_review",
    ) -> Template:
        """The held events of one status, oldest first."""
        async with viewer.services.db.read() as session:
            page = await review.queue(session, brand_id=viewer.brand.id, status=status, limit=200)
        return render(viewer, "console/review.html.jinja2", active="review", request=request, page=page, status=status)

    @post("/{held_id:int}/approve")
    async def approve(self, held_id: FromPath[int], viewer: ConsoleViewerDep) -> Redirect:
        """Apply the held event once."""
        await review.approve(
            viewer.services.db, viewer.services.pipeline, brand=viewer.brand, held_id=held_id,
            actor=admin_actor(viewer.admin.email), now=viewer.now,
        )  # fmt: skip
        return done("/console/review", "saved")

    @post("/{held_id:int}/reject")
    async def reject(self, held_id: FromPath[int], viewer: ConsoleViewerDep) -> Redirect:
        """Reject the held event: it is never applied."""
        await review.reject(
            viewer.services.db, brand=viewer.brand, held_id=held_id, actor=admin_actor(viewer.admin.email),
            now=viewer.now,
        )  # fmt: skip
        return done("/console/review", "saved")


class AuditPageController(Controller):
    """The audit log of brand-side changes, filtered by kind of action and by who made them."""

    path = "/console/audit"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def entries(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        action: Annotated[str, QueryParameter(max_length=64)] = "",
        actor: Annotated[str, QueryParameter(max_length=200)] = "",
        before: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
    ) -> Template:
        """A page of entries, newest first."""
        async with viewer.services.db.read() as session:
            page = await audit.entries(
                session, brand_id=viewer.brand.id, limit=50, before=before, action=action or None, actor=actor or None
            )
        return render(
            viewer, "console/audit.html.jinja2", active="audit", request=request, page=page, action=action,
            actor=actor, actions=AUDIT_ACTIONS,
        )  # fmt: skip


class MemberExportPageController(Controller):
    """A member's data export from the console (the same content as ``GET /v1/members/{id}/export``)."""

    path = "/console/member-export"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/{external_id:str}")
    async def export(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        external_id: FromPath[str],
        format: Annotated[Literal["json", "html"], QueryParameter()] = "json",
    ) -> Response[Any]:
        """JSON (a download) or the readable page."""
        found = await build_export(viewer.services, viewer.brand, external_id, from_replica=True)
        if format == "html":
            return export_page(request, viewer.brand, found)
        return Response(
            found,
            headers={"Content-Disposition": 'attachment; filename="member-export.json"', "Cache-Control": "no-store"},
        )
