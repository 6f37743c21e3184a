"""What the widgets show and who may see it: their JSON shapes, key and origin checks, the member's token.

The pages and JSON routes are in :mod:`web.pages.widgets`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Request
from litestar.params import QueryParameter
from litestar.response import ServerSentEvent

from engine import members as members_repo
from engine.errors import AuthenticationError, NotFound, PermissionDenied
from engine.members import Member
from engine.tenants import Brand, KeyKind, Principal
from leaderboards import ranking
from leaderboards.models import Entry
from web.deps import Services
from web.i18n import Translator
from web.pages import live, security, tokens, views

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
