"""The Jinja2 environment (autoescaping on), cache-busted static URLs, and the page response helper."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template

from web.pages import colors, security

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


@cache
def _digest(name: str) -> str:
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise FileNotFoundError(name)
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def asset(name: str) -> str:
    """The URL of a static file with a content hash, so browsers may cache it for long."""
    return f"/static/{name}?v={_digest(name)}"


def build_environment() -> Environment:
    """The template environment: autoescape everywhere, undefined names are errors, a few globals."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["asset"] = asset
    env.globals["accent_vars"] = colors.accent_variables
    return env


def template_engine() -> JinjaTemplateEngine:
    """Litestar's Jinja engine over :func:`build_environment`."""
    return JinjaTemplateEngine.from_environment(build_environment())


def page(
    name: str,
    context: dict[str, Any],
    *,
    nonce: str,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    headers: dict[str, str] | None = None,
) -> Template:
    """A portal or console page with its security headers (CSP with ``nonce``, never framed)."""
    return Template(
        template_name=name,
        context={**context, "nonce": nonce},
        headers={**security.page_headers(nonce), **(headers or {})},
        status_code=status_code,
        cookies=cookies,
    )
