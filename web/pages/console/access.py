"""Console pages for integration settings: API keys, widget embedding and branding (webhooks: ``webhooks.py``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template
from sqlalchemy import select

from engine import tenants
from engine.audit import admin_actor
from engine.errors import ValidationError
from engine.orm import BrandRow
from engine.tenants import KeyKind
from web.pages import security
from web.pages.console import base
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


async def update_brand_settings(viewer: ConsoleViewerDep, changes: dict[str, Any]) -> None:
    """Merge ``changes`` into ``brands.settings`` (in one short transaction)."""
    async with viewer.services.db.write() as session:
        row = await session.get(BrandRow, viewer.brand.id, with_for_update=viewer.services.db.is_postgres)
        if row is None:  # the admin's brand cannot vanish under a valid session, but stay explicit
            raise ValidationError("brand not found", field="brand")
        row.settings = {**(row.settings or {}), **changes}


class KeysController(Controller):
    """API keys: list by prefix, issue (shown once), revoke."""

    path = "/console/keys"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], **extra: Any) -> Template:
        async with viewer.services.db.read() as session:
            keys = await tenants.list_keys(session, viewer.brand.id)
        context: dict[str, Any] = {"keys": keys, "issued": None, "errors": {}, "form": {}}
        context.update(extra)
        return render(viewer, "console/keys.html.jinja2", active="keys", request=request, **context)

    @get("/")
    async def keys(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The brand's keys (prefixes only) and the form to issue one."""
        return await self._page(viewer, request)

    @post("/")
    async def issue(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData) -> Template:
        """Issue a key and show it this one time."""
        kind_value = data.get("kind", "")
        label = data.get("label", "").strip()
        errors: dict[str, str] = {}
        if kind_value not in {k.value for k in KeyKind}:
            errors["kind"] = viewer.t("Choose secret or publishable.")
        if len(label) > 100:
            errors["label"] = viewer.t("Use at most %(max)s characters.", max=100)
        if errors:
            return await self._page(viewer, request, errors=errors, form=data)
        issued = await tenants.issue_key(
            viewer.services.db, brand_id=viewer.brand.id, kind=KeyKind(kind_value), now=viewer.now, label=label,
            actor=admin_actor(viewer.admin.email),
        )  # fmt: skip
        return await self._page(viewer, request, issued=issued)

    @post("/{prefix:str}/revoke")
    async def revoke(self, prefix: FromPath[str], viewer: ConsoleViewerDep) -> Redirect:
        """Revoke the live key with this prefix."""
        if len(prefix) < 10:
            raise ValidationError("give the whole prefix of the key", field="prefix")
        await tenants.revoke_key(
            viewer.services.db, brand_id=viewer.brand.id, prefix=prefix, now=viewer.now,
            actor=admin_actor(viewer.admin.email),
        )  # fmt: skip
        return done("/console/keys", "revoked")


async def _first_scope(viewer: ConsoleViewerDep, board_id: int) -> str:
    """The first scope value of a scoped board that has standings (a placeholder when none has yet)."""
    from leaderboards.orm import BoardTotalRow

    async with viewer.services.db.read() as session:
        found = await session.scalar(
            select(BoardTotalRow.scope)
            .where(BoardTotalRow.board_id == board_id, BoardTotalRow.scope != "")
            .order_by(BoardTotalRow.scope)
            .limit(1)
        )
    return found or "-"


class WidgetSettingsController(Controller):
    """Which sites may embed the widgets, the brand's accent colour, and ready-to-paste embed code."""

    path = "/console/widgets"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], **extra: Any) -> Template:
        from web.pages import views

        async with viewer.services.db.read() as session:
            keys = await tenants.list_keys(session, viewer.brand.id)
        boards = await views.public_boards(viewer.services, viewer.brand)
        context: dict[str, Any] = {
            "origins": "\n".join(security.allowed_origins(viewer.brand.settings)),
            "accent_value": base.accent_of(viewer.brand) or "#5b3df5",
            "publishable": [k for k in keys if k.kind is KeyKind.PUBLISHABLE and k.revoked_at is None],
            "boards": boards,
            "public_url": viewer.services.settings.public_url.rstrip("/"),
            "errors": {},
        }
        context.update(extra)
        return render(viewer, "console/widgets.html.jinja2", active="widgets", request=request, **context)

    @get("/")
    async def widgets(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """The allow-list, the accent colour and the embed snippets."""
        return await self._page(viewer, request)

    @get("/preview/{board:str}")
    async def preview(
        self,
        viewer: ConsoleViewerDep,
        board: FromPath[str],
        theme: Annotated[Literal["light", "dark", "auto"], QueryParameter()] = "light",
        board_scope: Annotated[str, QueryParameter(name="scope", max_length=200)] = "",
    ) -> Template:
        """The leaderboard widget as members will see it (framed by this console only).

        A board kept per scope (e.g. per store) is previewed on the given ``scope``, else on its first scope
        with standings.
        """
        from web.pages import views, widget_data, widgets

        definition = await views.public_board(viewer.services, viewer.brand, board)
        scope = board_scope
        if definition.scope is not None and not scope:
            scope = await _first_scope(viewer, definition.id)
        content = await widget_data.widget_board(
            viewer.services, viewer.brand, board, rows=10, member=None, scope=scope, t=viewer.t
        )
        return widgets.leaderboard_page(
            viewer.brand,
            content,
            look=widget_data.WidgetLook(theme=theme, accent=None, font="system", transparent=False),
            t=viewer.t,
            live_url="",
            origin=None,
            now=viewer.now,
            ancestors=["'self'"],
        )

    @post("/")
    async def save(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Validate and store the allow-list and accent colour."""
        errors: dict[str, str] = {}
        origins: list[str] = []
        try:
            origins = security.parse_origins(data.get("origins", ""))
        except ValidationError as exc:
            errors["origins"] = exc.detail
        accent = data.get("accent", "").strip()
        if accent and not _HEX.match(accent):
            errors["accent"] = viewer.t("Choose a colour like #5b3df5.")
        if errors:
            return await self._page(
                viewer, request, errors=errors, origins=data.get("origins", ""), accent_value=accent or "#5b3df5"
            )
        await update_brand_settings(viewer, {"allowed_origins": origins, "accent": accent.lower() or None})
        return done("/console/widgets", "saved")
