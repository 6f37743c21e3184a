"""What every console page shares: the signed-in admin, the language, the layout context, errors as pages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect, Template
from litestar.types import ExceptionHandlersMap

from engine import tenants
from engine.admins import AdminUser, get_admin
from engine.errors import NotFound, QuestlineError
from engine.tenants import Brand
from web.deps import Services, ServicesDep
from web.i18n import N_, Translator, negotiate
from web.pages import rendering, security, sessions

LANG_COOKIE = "ql_lang"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")

#: Messages a redirect may ask the next page to show (``?ok=<key>``); anything else is ignored.
FLASHES = frozenset(
    {
        "saved",
        "created",
        "deleted",
        "revoked",
        "granted",
        "adjusted",
        "applied",
        "signed_out",
    }
)


class SignInRequired(Exception):
    """No valid console session: the page answers with a redirect to the sign-in form."""


@dataclass(frozen=True, slots=True)
class ConsoleViewer:
    """The signed-in admin, their brand, and how to talk to them."""

    admin: AdminUser
    brand: Brand
    t: Translator
    now: datetime
    nonce: str
    services: Services


#: Handler parameter type of the signed-in admin (injected by name, ``viewer``).
ConsoleViewerDep = NamedDependency[ConsoleViewer]


def accent_of(brand: Brand) -> str | None:
    """The brand's accent colour (``#rrggbb``) if it set a valid one."""
    value = brand.settings.get("accent")
    return value if isinstance(value, str) and _HEX.match(value) else None


def request_lang(request: Request[Any, Any, Any], *preferred: str | None) -> str:
    """The language for this request: ``?lang=``, then the language cookie, then ``preferred``, then the browser."""
    return negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        *preferred,
        accept_language=request.headers.get("accept-language"),
    )


def lang_cookie(request: Request[Any, Any, Any], services: Services, *, path: str) -> list[Cookie]:
    """Remember an explicit ``?lang=`` choice (a year), so later pages keep the language."""
    chosen = request.query_params.get("lang")
    if not chosen or chosen not in {"en", "it"}:
        return []
    return [security.session_cookie(services.settings, name=LANG_COOKIE, value=chosen, path=path, max_age=365 * 86400)]


async def provide_viewer(request: Request[Any, Any, Any], services: ServicesDep) -> ConsoleViewer:
    """The signed-in admin behind the session cookie.

    Raises:
        SignInRequired: no cookie, an ended session, or an admin that no longer exists.
    """
    token = request.cookies.get(sessions.COOKIE, "")
    admin_id = await sessions.session_admin(services.redis, namespace=services.settings.redis_namespace, token=token)
    if admin_id is None:
        raise SignInRequired
    admin = await get_admin(services.db, admin_id)
    if admin is None:
        raise SignInRequired
    async with services.db.read() as session:
        brand = await tenants.get_brand_by_id(session, admin.brand_id)
    return ConsoleViewer(
        admin=admin,
        brand=brand,
        t=Translator(request_lang(request)),
        now=services.clock.now(),
        nonce=security.new_nonce(),
        services=services,
    )


def _sign_in_redirect(request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method != "GET":
        target = "/console"
    return Redirect(f"/console/login?next={quote(target, safe='/')}", status_code=303)


def error_page(request: Request[Any, Any, Any], exc: QuestlineError) -> Response[Any]:
    """A domain error on a page, shown as a page (not problem JSON)."""
    t = Translator(request_lang(request))
    nonce = security.new_nonce()
    key = N_("Not found") if isinstance(exc, NotFound) else N_("Something went wrong")
    return Template(
        template_name="notice.html.jinja2",
        context={"t": t, "nonce": nonce, "accent": None, "title": t(key), "message": exc.detail, "icon_name": "alert"},
        headers=security.page_headers(nonce),
        status_code=exc.status,
    )


#: Dependencies and exception handlers of every signed-in console controller.
CONSOLE_DEPENDENCIES = {"viewer": Provide(provide_viewer)}
CONSOLE_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SignInRequired: _sign_in_redirect,
    QuestlineError: error_page,
}


def flashes(request: Request[Any, Any, Any], t: Translator) -> list[tuple[str, str]]:
    """The confirmation a redirect asked for (``?ok=saved``), translated."""
    key = request.query_params.get("ok")
    return [("ok", t.label("flash", key))] if key in FLASHES else []


def render(
    viewer: ConsoleViewer,
    template: str,
    *,
    active: str,
    request: Request[Any, Any, Any] | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A console page in the shared layout."""
    base = {
        "t": viewer.t,
        "brand": viewer.brand,
        "admin": viewer.admin,
        "active": active,
        "now": viewer.now,
        "tz": viewer.brand.tz,
        "accent": accent_of(viewer.brand),
        "flashes": flashes(request, viewer.t) if request is not None else [],
    }
    cookies = lang_cookie(request, viewer.services, path="/console") if request is not None else []
    return rendering.page(template, {**base, **context}, nonce=viewer.nonce, status_code=status_code, cookies=cookies)


def done(path: str, flash: str) -> Redirect:
    """Post/Redirect/Get: go to ``path`` and show the ``flash`` confirmation."""
    separator = "&" if "?" in path else "?"
    return Redirect(f"{path}{separator}ok={flash}", status_code=303)
