"""Console sign-in and sign-out: scrypt-checked passwords, a fresh session token each time, throttling.

Failed sign-ins are counted per email and per client address (``request.client``: run behind a proxy with
uvicorn's ``--proxy-headers`` and ``--forwarded-allow-ips`` so it is the visitor, not the proxy).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from engine.admins import authenticate
from engine.errors import AuthenticationError
from web.deps import ServicesDep
from web.i18n import Translator
from web.pages import rendering, security, sessions
from web.pages.console.base import (
    CONSOLE_DEPENDENCIES,
    CONSOLE_EXCEPTION_HANDLERS,
    ConsoleViewerDep,
    lang_cookie,
    request_lang,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a console path on this site (no open redirect)."""
    if not target or not target.startswith("/console") or target.startswith("//") or "\\" in target:
        return "/console"
    return target


def _login_page(
    request: Request[Any, Any, Any], services: ServicesDep, *, email: str = "", error: str = "", status: int = 200
) -> Template:
    t = Translator(request_lang(request))
    return rendering.page(
        "console/login.html.jinja2",
        {
            "t": t,
            "accent": None,
            "email": email,
            "error": error,
            "next": safe_next(request.query_params.get("next")),
            "signed_out": request.query_params.get("ok") == "signed_out",
        },
        nonce=security.new_nonce(),
        status_code=status,
        cookies=lang_cookie(request, services, path="/console"),
    )


class ConsoleAuthController(Controller):
    """Sign-in form, sign-in, sign-out."""

    path = "/console"
    include_in_schema = False

    @get("/login", name="console:login")
    async def login_form(self, request: Request[Any, Any, Any], services: ServicesDep) -> Template:
        """The sign-in form."""
        return _login_page(request, services)

    @post("/login", status_code=303)
    async def login(
        self, request: Request[Any, Any, Any], services: ServicesDep, data: FormData
    ) -> Template | Redirect:
        """Check the password; on success start a session and go where the admin was heading."""
        email = data.get("email", "").strip()[:254]
        password = data.get("password", "")[:1024]
        namespace = services.settings.redis_namespace
        client = request.client.host if request.client is not None else ""
        t = Translator(request_lang(request))
        if await sessions.throttled(services.redis, namespace=namespace, email=email, client=client):
            return _login_page(
                request,
                services,
                email=email,
                error=t("Too many attempts. Wait a few minutes and try again."),
                status=429,
            )
        try:
            admin = await authenticate(services.db, email=email, password=password, now=services.clock.now())
        except AuthenticationError:
            await sessions.record_failure(services.redis, namespace=namespace, email=email, client=client)
            return _login_page(request, services, email=email, error=t("Wrong email or password."), status=401)
        await sessions.clear_failures(services.redis, namespace=namespace, email=email)
        token = await sessions.open_session(services.redis, namespace=namespace, admin_id=admin.id)
        cookie = security.session_cookie(
            services.settings, name=sessions.COOKIE, value=token, path="/console", max_age=sessions.TTL_SECONDS
        )
        return Redirect(safe_next(data.get("next")), status_code=303, cookies=[cookie])

    @post(
        "/logout",
        status_code=303,
        dependencies=CONSOLE_DEPENDENCIES,
        exception_handlers=CONSOLE_EXCEPTION_HANDLERS,
    )
    async def logout(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Redirect:
        """End the session everywhere and forget the cookie."""
        services = viewer.services
        await sessions.close_session(
            services.redis, namespace=services.settings.redis_namespace, token=request.cookies.get(sessions.COOKIE, "")
        )
        cookie = security.expired_cookie(services.settings, name=sessions.COOKIE, path="/console")
        return Redirect("/console/login?ok=signed_out", status_code=303, cookies=[cookie])
