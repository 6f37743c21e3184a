"""The console's program document page: the YAML view, dry run, apply and simulation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from challenges import versions as challenge_versions
from challenges.simulate import SimulationReport
from engine.errors import QuestlineError, ValidationError
from web import program
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.console.campaign_forms import (
    MAX_DOCUMENT_CHARS,
    message_of,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


class ProgramPageController(Controller):
    """The whole program as YAML: view, check (dry run), apply, simulate on past events."""

    path = "/console/program"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(
        self,
        viewer: ConsoleViewerDep,
        request: Request[Any, Any, Any],
        *,
        text: str | None = None,
        status_code: int = 200,
        **extra: Any,
    ) -> Template:
        async with viewer.services.db.read() as session:
            if text is None:
                text = program.dump_yaml(await program.export_program(session, brand=viewer.brand))
            versions = await challenge_versions.list_versions(session, brand_id=viewer.brand.id, limit=10)
        local_now = viewer.now.astimezone(viewer.brand.tz)
        context: dict[str, Any] = {
            "text": text,
            "versions": versions,
            "error": None,
            "changes": None,
            "report": None,
            "since": (local_now - timedelta(days=30)).strftime("%Y-%m-%d"),
            "until": local_now.strftime("%Y-%m-%d"),
        }
        context.update(extra)
        return render(
            viewer, "console/program.html.jinja2", active="program", request=request, status_code=status_code, **context
        )

    @get("/")
    async def view(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The program document, its recent versions and the simulator."""
        return await self._page(viewer, request)

    def _document(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_DOCUMENT_CHARS:
            raise ValidationError("the document is too large", field="$")
        return program.load_document(text.encode(), content_type="application/yaml")

    @post("/")
    async def submit(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Check (dry run), apply, or simulate the document in the editor."""
        text = data.get("document", "")
        action = data.get("action", "check")
        try:
            document = self._document(text)
            if action == "simulate":
                report = await self._simulate(viewer, document, data)
                return await self._page(
                    viewer, request, text=text, report=report, since=data.get("since", ""), until=data.get("until", "")
                )
            result = await program.apply_program(
                viewer.services.db,
                brand=viewer.brand,
                document=document,
                now=viewer.now,
                dry_run=action != "apply",
                source="console",
                actor=f"admin:{viewer.admin.email}",
            )
        except QuestlineError as exc:
            return await self._page(
                viewer,
                request,
                text=text,
                error={"message": message_of(exc), "path": exc.field or ""},
                status_code=422,
                since=data.get("since", ""),
                until=data.get("until", ""),
            )
        if action == "apply":
            return done("/console/program", "applied")
        return await self._page(viewer, request, text=text, changes=result.changes)

    async def _simulate(
        self, viewer: ConsoleViewerDep, document: dict[str, Any], data: dict[str, str]
    ) -> SimulationReport:
        brand = viewer.brand
        since = program.parse_instant(data.get("since") or None, brand, field="since")
        until = program.parse_instant(data.get("until") or None, brand, field="until")
        if until is not None and len(data.get("until", "")) == 10:
            until += timedelta(days=1)  # a date "to" includes that whole day
        until = until or viewer.now
        if since is not None and until <= since:
            raise ValidationError(viewer.t("“To” must come after “from”."), field="until")
        return await program.simulate_program(
            viewer.services.db, brand=brand, document=document, since=since, until=until, top=10
        )
