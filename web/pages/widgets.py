"""Embeddable widgets: a live leaderboard and a member's badge shelf, for other sites and apps.

Each widget is a page meant for an ``<iframe>`` (``/static/widget.js`` creates one from a script tag and
resizes it) plus a JSON twin for custom UIs. Only a publishable key opens them; a secret key in a widget
URL is refused, because a page would leak it. Theme parameters are validated and become CSS variables in
a nonce'd style. A page may be framed only by the brand's allowed origins (``frame-ancestors``); the JSON
and the live stream refuse other origins. Updates arrive as Server-Sent Events from the leaderboards'
pub/sub channel (and, for the shelf, the member's channel), never with personal data in them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

import msgspec
from litestar import Controller, Request, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import ServerSentEvent, Template

from engine import members as members_repo
from engine.errors import AuthenticationError, NotFound, PermissionDenied, QuestlineError
from engine.members import Member
from engine.tenants import Brand, KeyKind, Principal
from leaderboards import keys as board_keys
from leaderboards import ranking
from leaderboards.models import Entry
from web.deps import Services, ServicesDep
from web.i18n import Translator, negotiate
from web.pages import live, security, tokens, views
from web.pages.console.base import accent_of

Theme = Literal["light", "dark", "auto"]
Font = Literal["system", "serif", "rounded", "mono"]
ACCENT_PARAM = QueryParameter(pattern=r"^#[0-9a-fA-F]{6}$", description="Accent colour, `#RRGGBB`.")
KEY_PARAM = QueryParameter(description="The brand's publishable key (`pk_…`). A secret key is refused.", max_length=200)
MEMBER_PARAM = QueryParameter(
    description="A signed member token (`POST /v1/members/{id}/widget-token`).", max_length=2048
)

FONTS: dict[str, str] = {
    # Unquoted family names: the value goes into a <style> element, where quotes would be escaped.
    "system": "system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif",
    "serif": "Georgia, Iowan Old Style, Times New Roman, serif",
    "rounded": "ui-rounded, SF Pro Rounded, Nunito, system-ui, sans-serif",
    "mono": "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
}
MAX_ROWS = 50


class WidgetEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a leaderboard widget."""

    rank: int
    score: float
    label: str
    """How the member appears on this board (full name, initials or pseudonym, by the board's policy)."""
    row: str
    """An opaque, stable id of the row (for animations); not the member's id."""
    me: bool = False


class WidgetBoard(msgspec.Struct, frozen=True, kw_only=True):
    """What the leaderboard widget shows."""

    board: str
    title: str
    period: str
    period_starts_at: datetime | None
    period_ends_at: datetime | None
    total: int
    decimals: int
    """Digits after the decimal point of this board's scores."""
    entries: list[WidgetEntry]
    me: WidgetEntry | None = None
    """The viewing member's row when a member token was given and they are on the board."""


class WidgetBadge(msgspec.Struct, frozen=True, kw_only=True):
    """One badge of a member's shelf, as the badge widget shows it."""

    key: str
    name: str
    image: str
    level: str = ""
    count: int = 1
    awarded_at: datetime | None = None


class WidgetShelf(msgspec.Struct, frozen=True, kw_only=True):
    """A member's earned badges, for the badge-shelf widget."""

    member: str
    """The member's display name."""
    earned: list[WidgetBadge]
    locked: int
    """How many visible badges are still to earn."""


@dataclass(frozen=True, slots=True)
class WidgetLook:
    """Validated theme parameters."""

    theme: Theme
    accent: str | None
    font: Font
    transparent: bool


def refuse_secret(key: str) -> None:
    """Refuse a secret key before even looking it up.

    Raises:
        PermissionDenied: the key is a secret key (it must never appear in a page).
    """
    if key.startswith("sk_"):
        raise PermissionDenied(
            "a secret key (sk_…) must never be put in a web page; embed widgets with the publishable key (pk_…)",
            field="key",
        )


async def widget_principal(services: Services, key: str) -> Principal:
    """The brand behind a publishable key.

    Raises:
        PermissionDenied: a secret key.
        AuthenticationError: an unknown or revoked key.
    """
    refuse_secret(key)
    if not key:
        raise AuthenticationError("add your publishable key as ?key=pk_…", field="key")
    principal = await services.keys.resolve(key)
    if principal.kind is not KeyKind.PUBLISHABLE:
        raise PermissionDenied("widgets take the publishable key (pk_…)", field="key")
    return principal


async def reading_brand(request: Request[Any, Any, Any], services: Services, key: str) -> Brand:
    """The brand behind a publishable key, for a read from an origin the brand allows (JSON, live streams).

    Raises:
        PermissionDenied: a secret key, or an origin the brand did not allow.
        AuthenticationError: an unknown or revoked key.
    """
    principal = await widget_principal(services, key)
    check_origin(request, services, principal.brand)
    return principal.brand


def check_origin(request: Request[Any, Any, Any], services: Services, brand: Brand) -> None:
    """Refuse a cross-origin read from a site the brand did not allow.

    Raises:
        PermissionDenied: the request's ``Origin`` is neither this server nor on the brand's allow-list.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = security.origin_of(services.settings.public_url)
    if origin == own or security.origin_allowed(origin, security.allowed_origins(brand.settings)):
        return
    raise PermissionDenied(
        f"origin {origin!r} may not read this brand's widgets; add it in the console", field="origin"
    )


def parent_origin(request: Request[Any, Any, Any], brand: Brand, declared: str | None) -> str | None:
    """The embedding page's origin, if allowed: ``postMessage`` targets exactly it (never ``*``)."""
    allowed = security.allowed_origins(brand.settings)
    candidates = [declared, security.origin_of(request.headers.get("referer", ""))]
    for candidate in candidates:
        if candidate and security.origin_allowed(candidate, allowed):
            return candidate.rstrip("/")
    return None


async def viewing_member(services: Services, brand: Brand, token: str | None) -> Member | None:
    """The member a widget token names, if the token is valid and of this brand (else nobody)."""
    if not token:
        return None
    try:
        claims = tokens.verify(
            token, secret=services.settings.secret, purpose=tokens.Purpose.WIDGET_MEMBER, now=services.clock.now()
        )
    except AuthenticationError:
        return None
    if claims.brand_id != brand.id:
        return None
    async with services.db.read() as session:
        try:
            return await members_repo.get_member(session, brand_id=brand.id, external_id=claims.member)
        except NotFound:
            return None


async def shelf_member(
    services: Services,
    brand: Brand,
    token: str,
    *,
    missing: str = "the badge widget needs a valid member token (?member=…)",
) -> Member:
    """The member whose badge shelf a widget token opens.

    Raises:
        AuthenticationError: no valid member token of this brand (``missing`` says so).
    """
    viewer = await viewing_member(services, brand, token)
    if viewer is None:
        raise AuthenticationError(missing, field="member")
    return viewer


def live_stream(services: Services, channel: str) -> ServerSentEvent:
    """``update`` events whenever something is published on ``channel`` (never cached or buffered)."""
    return ServerSentEvent(
        live.updates(services.redis, [channel]),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def row_id(secret: str, brand: Brand, label: str, rank: int, member: str | None) -> str:
    """A stable, opaque row id: a keyed hash of the member (or of the label when no id is known)."""
    basis = member if member is not None else f"{label}\x00{rank}"
    return hmac.new(secret.encode(), f"row:{brand.id}:{basis}".encode(), hashlib.sha256).hexdigest()[:12]


async def widget_board(
    services: Services, brand: Brand, board_key: str, *, rows: int, member: Member | None, scope: str, t: Translator
) -> WidgetBoard:
    """The leaderboard widget's content (public boards only).

    Raises:
        NotFound: no such board, or it is not public.
    """
    definition = await views.public_board(services, brand, board_key)
    page = await views.board_page(services, brand, board_key, limit=rows, member=member, scope=scope, public=True)
    secret = services.settings.secret

    def entry(e: Entry) -> WidgetEntry:
        return WidgetEntry(
            rank=e.rank, score=e.score, label=e.label, row=row_id(secret, brand, e.label, e.rank, e.member), me=e.me
        )

    entries = [entry(e) for e in page.entries]
    me = next((e for e in entries if e.me), None)
    standing = page.me
    if me is None and standing is not None and standing.rank is not None and standing.score is not None:
        me = WidgetEntry(
            rank=standing.rank,
            score=standing.score,
            label=standing.label,
            row=row_id(secret, brand, standing.label, standing.rank, standing.member),
            me=True,
        )
    return WidgetBoard(
        board=page.board.key,
        title=definition.in_locale(t.lang).title,
        period=views.period_label(page.board.period, page.period.starts_at, page.period.ends_at, t, brand.tz),
        period_starts_at=page.period.starts_at,
        period_ends_at=page.period.ends_at,
        total=page.total,
        decimals=definition.decimals,
        entries=entries,
        me=me,
    )


async def widget_shelf(services: Services, brand: Brand, member: Member, *, locale: str | None = None) -> WidgetShelf:
    """The badge widget's content: the member's earned badges (names in ``locale``, by default the member's)."""
    shelf = await views.member_badges(services, brand, member, locale=locale)
    return WidgetShelf(
        # External ids never leave through a publishable key: a member without a name gets a pseudonym.
        member=member.display_name or ranking.pseudonym_for(brand.id, member.id),
        earned=[
            WidgetBadge(
                key=b.key, name=b.name, image=b.image, level=b.level_name, count=b.count, awarded_at=b.awarded_at
            )
            for b in shelf.earned
        ],
        locked=len(shelf.locked) + len({b.key for b in shelf.in_progress} - {b.key for b in shelf.earned}),
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
) -> Template:
    """The leaderboard widget page (framed by the brand's allowed origins unless ``ancestors`` is given)."""
    return _page(
        "widgets/leaderboard.html.jinja2",
        brand,
        look=look,
        origin=origin,
        context={"t": t, "board": board, "brand": brand, "live_url": live_url, "now": now},
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
