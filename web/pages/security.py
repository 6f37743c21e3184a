"""Browser-facing security: Content-Security-Policy, cookies, and the per-brand origin allow-list.

Portal and console pages may never be framed (``frame-ancestors 'none'``); widget pages may be framed only
by the origins the brand listed in ``brands.settings["allowed_origins"]`` (edited in the console). Inline
scripts are never allowed; the one inline ``<style>`` a page may carry (theme variables) holds a per-response
nonce.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import ValidationError
from engine.settings import Settings

#: An origin as CSP and ``postMessage`` accept it: scheme, host (optionally ``*.`` wildcard), optional port.
_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://(?P<host>(\*\.)?[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?)*)"
    r"(:(?P<port>[0-9]{1,5}))?$"
)
MAX_ORIGINS = 20
_LOCAL_HOSTS = {"localhost", "127.0.0.1"}


def new_nonce() -> str:
    """A fresh CSP nonce for one response."""
    return secrets.token_urlsafe(16)


def page_csp(nonce: str) -> str:
    """The policy of portal and console pages: same-origin everything, never framed."""
    return (
        "default-src 'self'; img-src 'self' data:; "
        f"style-src 'self' 'nonce-{nonce}'; script-src 'self'; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def widget_csp(nonce: str, ancestors: Iterable[str]) -> str:
    """The policy of a widget page: framed only by the brand's allowed origins (and this server)."""
    allowed = " ".join(["'self'", *ancestors])
    return (
        "default-src 'none'; img-src 'self' data:; "
        f"style-src 'self' 'nonce-{nonce}'; script-src 'self'; connect-src 'self'; "
        f"base-uri 'none'; form-action 'none'; frame-ancestors {allowed}"
    )


def page_headers(nonce: str) -> dict[str, str]:
    """Headers of every portal and console page."""
    return {
        "Content-Security-Policy": page_csp(nonce),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def widget_headers(nonce: str, ancestors: Iterable[str]) -> dict[str, str]:
    """Headers of a widget page (no ``X-Frame-Options``: ``frame-ancestors`` decides)."""
    return {
        "Content-Security-Policy": widget_csp(nonce, ancestors),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-store",
    }


def is_https(settings: Settings) -> bool:
    """Whether the public URL is served over HTTPS (cookies are then ``Secure``)."""
    return settings.public_url.lower().startswith("https://")


def session_cookie(settings: Settings, *, name: str, value: str, path: str, max_age: int | None) -> Cookie:
    """An HttpOnly, SameSite=Lax cookie; ``Secure`` when the public URL is HTTPS."""
    return Cookie(
        key=name,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_https(settings),
    )


def expired_cookie(settings: Settings, *, name: str, path: str) -> Cookie:
    """A cookie that makes the browser forget ``name``."""
    return Cookie(key=name, value="", path=path, max_age=0, httponly=True, samesite="lax", secure=is_https(settings))


def normalise_origin(raw: str) -> str:
    """``raw`` as a canonical origin (``https://shop.example`` or ``https://*.example``).

    Plain ``http`` is accepted only for ``localhost`` and ``127.0.0.1`` (development).

    Raises:
        ValidationError: not an origin (a path, a query, a bad scheme or host).
    """
    value = raw.strip().rstrip("/").lower()
    match = _ORIGIN.match(value)
    if match is None:
        raise ValidationError(f"{raw.strip()!r} is not an origin like https://shop.example", field="allowed_origins")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise ValidationError(f"{raw.strip()!r} has an invalid port", field="allowed_origins")
    if match.group("scheme") == "http" and match.group("host") not in _LOCAL_HOSTS:
        raise ValidationError(f"{raw.strip()!r} must use https", field="allowed_origins")
    return value


def parse_origins(text: str) -> list[str]:
    """One origin per line (or separated by spaces/commas), validated and de-duplicated.

    Raises:
        ValidationError: a bad origin, or more than ``MAX_ORIGINS``.
    """
    origins = list(dict.fromkeys(normalise_origin(part) for part in re.split(r"[\s,]+", text) if part.strip()))
    if len(origins) > MAX_ORIGINS:
        raise ValidationError(f"list at most {MAX_ORIGINS} origins", field="allowed_origins")
    return origins


def allowed_origins(settings: Mapping[str, Any]) -> list[str]:
    """The origins a brand allows to embed its widgets (from ``brands.settings``)."""
    stored = settings.get("allowed_origins") or []
    return [str(o) for o in stored if isinstance(o, str)]


def origin_allowed(origin: str, allowed: Iterable[str]) -> bool:
    """Whether ``origin`` (exact, from a browser) matches an allowed origin or wildcard."""
    candidate = origin.strip().lower().rstrip("/")
    parts = urlsplit(candidate)
    if not parts.scheme or not parts.hostname:
        return False
    for entry in allowed:
        if entry == candidate:
            return True
        scheme, _, host = entry.partition("://")
        if not host.startswith("*."):
            continue
        suffix_host, _, port = host[2:].partition(":")
        if parts.scheme != scheme or (port and str(parts.port or "") != port):
            continue
        if parts.hostname.endswith("." + suffix_host):
            return True
    return False


def origin_of(url: str) -> str | None:
    """The origin of an absolute URL (``scheme://host[:port]``), or ``None``."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return None
    suffix = f":{port}" if port and port != default else ""
    return f"{parts.scheme}://{parts.hostname}{suffix}"


NOSNIFF = "nosniff"
NO_STORE = "no-store"


def hsts_of(settings: Settings) -> str | None:
    """The ``Strict-Transport-Security`` value, when HSTS is configured and the public URL is https."""
    return f"max-age={settings.hsts_seconds}" if settings.hsts_seconds > 0 and is_https(settings) else None


def api_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """What :class:`SecurityHeadersMiddleware` adds to an API answer that chose none of these headers itself."""
    found = [(b"x-content-type-options", NOSNIFF.encode()), (b"cache-control", NO_STORE.encode())]
    hsts = hsts_of(settings)
    if hsts is not None:
        found.append((b"strict-transport-security", hsts.encode()))
    return found


class SecurityHeadersMiddleware:
    """Headers every response gets: ``nosniff``, ``no-store`` on API JSON, and HSTS when configured.

    API answers (``/v1/…``) carry member data and must neither be sniffed into another type nor kept by a
    shared cache; a handler that chose its own ``Cache-Control`` (public widget reads) keeps it.
    ``Strict-Transport-Security`` is sent only when ``QUESTLINE_HSTS_SECONDS`` is above 0 and the public
    URL is https (a browser would otherwise refuse plain http to this host for that long).
    """

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self._hsts = hsts_of(settings)

    @classmethod
    def define(cls, settings: Settings) -> DefineMiddleware:
        """The middleware as Litestar's ``middleware=[…]`` takes it."""
        return DefineMiddleware(cls, settings=settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers when the response starts."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith("/v1/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "x-content-type-options" not in headers:
                    headers["X-Content-Type-Options"] = NOSNIFF
                if api and "cache-control" not in headers:
                    headers["Cache-Control"] = NO_STORE
                if self._hsts is not None:
                    headers["Strict-Transport-Security"] = self._hsts
            await send(message)

        await self.app(scope, receive, with_headers)
