"""Embeddable widgets: a live leaderboard and a member's badge shelf, for other sites and apps.

Each widget is a page meant for an ``<iframe>`` (``/static/widget.js`` creates one from a script tag and
resizes it) plus a JSON twin for custom UIs. Only a publishable key opens them; a secret key in a widget
URL is refused, because a page would leak it. Theme parameters are validated and become CSS variables in
a nonce'd style. A page may be framed only by the brand's allowed origins (``frame-ancestors``); the JSON
and the live stream refuse other origins. Updates arrive as Server-Sent Events from the leaderboards'
pub/sub channel (and, for the shelf, the member's channel), never with personal data in them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, Template

from engine.errors import QuestlineError
from engine.tenants import Brand
from leaderboards import keys as board_keys
from web.deps import ServicesDep
from web.i18n import Translator, negotiate
from web.i18n.localized import Localized, in_language
from web.pages import live, security, views
from web.pages.console.base import accent_of
from web.pages.widget_data import (
    ACCENT_PARAM,
    FONTS,
    KEY_PARAM,
    MAX_ROWS,
    MEMBER_PARAM,
    Font,
    Theme,
    WidgetBoard,
    WidgetLook,
    WidgetShelf,
    live_stream,
    parent_origin,
    reading_brand,
    shelf_member,
    viewing_member,
    widget_board,
    widget_principal,
    widget_shelf,
)


def _error(request: Request[Any, Any, Any], exc: QuestlineError) -> Response[Any]:
    t = Translator(negotiate(request.query_params.get("lang"), accept_language=request.headers.get("accept-language")))
    nonce = security.new_nonce()
    return Template(
        template_name="widgets/error.html.jinja2",
        context={"t": t, "nonce": nonce, "message": exc.detail, "accent": None},
        # An error page may be framed anywhere, so whoever embedded the widget can read what went wrong.
        headers={**security.widget_headers(nonce, ["*"]), "X-Robots-Tag": "noindex"},
        status_code=exc.status,
    )


def _page(
    template: str,
    brand: Brand,
    *,
    look: WidgetLook,
    origin: str | None,
    context: dict[str, Any],
    ancestors: list[str] | None = None,
) -> Template:
    nonce = security.new_nonce()
    t = context["t"]
    return Template(
        template_name=template,
        context={
            **context,
            "nonce": nonce,
            "accent": look.accent or accent_of(brand),
            "font": FONTS[look.font],
            "look": look,
            "parent_origin": origin or "",
            "lang": t.lang,
        },
        headers=security.widget_headers(
            nonce, security.allowed_origins(brand.settings) if ancestors is None else ancestors
        ),
    )


def leaderboard_page(
    brand: Brand,
    board: WidgetBoard,
    *,
    look: WidgetLook,
    t: Translator,
    live_url: str,
    origin: str | None,
    now: datetime,
    ancestors: list[str] | None = None,
    title: Localized | None = None,
) -> Template:
    """The leaderboard widget page (framed by the brand's allowed origins unless ``ancestors`` is given).

    ``title`` is the board's title with its language (marked with ``lang`` when it differs from the page's).
    """
    context = {"t": t, "board": board, "brand": brand, "live_url": live_url, "now": now}
    return _page(
        "widgets/leaderboard.html.jinja2",
        brand,
        look=look,
        origin=origin,
        context={**context, "title": title or Localized(text=board.title)},
        ancestors=ancestors,
    )


class WidgetsController(Controller):
    """Widget pages (for iframes) and their live streams."""

    path = "/widgets"
    include_in_schema = False
    exception_handlers = {QuestlineError: _error}  # noqa: RUF012

    @get("/leaderboard/{board:str}")
    async def leaderboard(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        board: FromPath[str],
        key: Annotated[str, KEY_PARAM] = "",
        theme: Annotated[Theme, QueryParameter(description="light, dark or auto (follows the device).")] = "light",
        accent: Annotated[str | None, ACCENT_PARAM] = None,
        font: Annotated[Font, QueryParameter(description="system, serif, rounded or mono.")] = "system",
        rows: Annotated[int, QueryParameter(ge=1, le=MAX_ROWS)] = 10,
        member: Annotated[str | None, MEMBER_PARAM] = None,
        board_scope: Annotated[str, QueryParameter(name="scope", max_length=200)] = "",
        lang: Annotated[str | None, QueryParameter(max_length=16)] = None,
        origin: Annotated[str | None, QueryParameter(max_length=300)] = None,
        transparent: Annotated[bool, QueryParameter(description="No background of its own.")] = False,
    ) -> Template:
        """The leaderboard widget: top rows, the viewer highlighted, live."""
        principal = await widget_principal(services, key)
        brand = principal.brand
        viewer = await viewing_member(services, brand, member)
        t = Translator(
            negotiate(lang, viewer.locale if viewer else None, accept_language=request.headers.get("accept-language"))
        )
        content = await widget_board(services, brand, board, rows=rows, member=viewer, scope=board_scope, t=t)
        definition = await views.public_board(services, brand, board)
        query = {"key": key, **({"scope": board_scope} if board_scope else {})}
        live_url = f"/widgets/leaderboard/{quote(board, safe='')}/live?{urlencode(query)}"
        return leaderboard_page(
            brand,
            content,
            look=WidgetLook(theme=theme, accent=accent, font=font, transparent=transparent),
            t=t,
            live_url=live_url,
            origin=parent_origin(request, brand, origin),
            now=services.clock.now(),
            title=in_language(definition.texts, "title", t.lang, definition.title),
        )

    @get("/leaderboard/{board:str}/live")
    async def leaderboard_live(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        board: FromPath[str],
        key: Annotated[str, KEY_PARAM] = "",
    ) -> ServerSentEvent:
        """``update`` whenever a score on this board changes (the page then reloads its rows)."""
        brand = await reading_brand(request, services, key)
        definition = await views.public_board(services, brand, board)
        return live_stream(
            services, board_keys.live_channel(services.settings.redis_namespace, brand.id, definition.key)
        )

    @get("/badges")
    async def badges(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        key: Annotated[str, KEY_PARAM] = "",
        member: Annotated[str, MEMBER_PARAM] = "",
        theme: Annotated[Theme, QueryParameter(description="light, dark or auto (follows the device).")] = "light",
        accent: Annotated[str | None, ACCENT_PARAM] = None,
        font: Annotated[Font, QueryParameter(description="system, serif, rounded or mono.")] = "system",
        lang: Annotated[str | None, QueryParameter(max_length=16)] = None,
        origin: Annotated[str | None, QueryParameter(max_length=300)] = None,
        transparent: Annotated[bool, QueryParameter(description="No background of its own.")] = False,
    ) -> Template:
        """The badge-shelf widget of the member named by the token."""
        principal = await widget_principal(services, key)
        brand = principal.brand
        viewer = await shelf_member(services, brand, member)
        t = Translator(negotiate(lang, viewer.locale, accept_language=request.headers.get("accept-language")))
        shelf = await widget_shelf(services, brand, viewer, locale=t.lang)
        return _page(
            "widgets/badges.html.jinja2",
            brand,
            look=WidgetLook(theme=theme, accent=accent, font=font, transparent=transparent),
            origin=parent_origin(request, brand, origin),
            context={
                "t": t,
                "shelf": shelf,
                "badge_names": await views.badge_names(services, brand, t.lang),
                "brand": brand,
                "live_url": "/widgets/badges/live?" + urlencode({"key": key, "member": member}),
                "now": services.clock.now(),
            },
        )

    @get("/badges/live")
    async def badges_live(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        key: Annotated[str, KEY_PARAM] = "",
        member: Annotated[str, MEMBER_PARAM] = "",
    ) -> ServerSentEvent:
        """``update`` whenever the member's badges may have changed."""
        brand = await reading_brand(request, services, key)
        viewer = await shelf_member(services, brand, member)
        return live_stream(services, live.member_channel(services.settings.redis_namespace, brand.id, viewer.id))


class WidgetDataController(Controller):
    """The widgets' content as JSON, for apps that draw their own (publishable key, CORS)."""

    path = "/widgets/v1"
    tags = ["widgets"]  # noqa: RUF012

    @get(
        "/leaderboards/{board:str}",
        summary="Leaderboard widget data",
        description=(
            "The top rows of a public board's current period, and the viewing member's row when a signed member "
            "token is given. Authenticated by the publishable key in `?key=` (a secret key is refused with 403). "
            "A browser request from an origin the brand did not allow is refused with 403."
        ),
    )
    async def board_data(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        board: FromPath[str],
        key: Annotated[str, KEY_PARAM] = "",
        rows: Annotated[int, QueryParameter(ge=1, le=MAX_ROWS, description="How many rows.")] = 10,
        member: Annotated[str | None, MEMBER_PARAM] = None,
        board_scope: Annotated[
            str, QueryParameter(name="scope", max_length=200, description="The scope value of a scoped board.")
        ] = "",
        lang: Annotated[str | None, QueryParameter(max_length=16, description="`it` or `en` (labels).")] = None,
    ) -> WidgetBoard:
        """Read a public board with a publishable key."""
        brand = await reading_brand(request, services, key)
        viewer = await viewing_member(services, brand, member)
        t = Translator(negotiate(lang, viewer.locale if viewer else None))
        return await widget_board(services, brand, board, rows=rows, member=viewer, scope=board_scope, t=t)

    @get(
        "/badges",
        summary="Badge-shelf widget data",
        description=(
            "The earned badges of the member named by a signed member token, with image URLs. Publishable key in "
            "`?key=`; a secret key is refused with 403."
        ),
    )
    async def shelf_data(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        key: Annotated[str, KEY_PARAM] = "",
        member: Annotated[str, MEMBER_PARAM] = "",
    ) -> WidgetShelf:
        """Read a member's earned badges with a publishable key and a member token."""
        brand = await reading_brand(request, services, key)
        viewer = await shelf_member(services, brand, member, missing="a valid member token is required (?member=…)")
        return await widget_shelf(services, brand, viewer)
