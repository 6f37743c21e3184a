"""``/``: a landing page pointing at the member portal, the brand console and the API reference."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from web.i18n import Translator, negotiate
from web.pages import rendering, security


@get("/", include_in_schema=False)
async def landing(request: Request[Any, Any, Any]) -> Template:
    """Where to go: members to their portal, brands to the console, developers to the API reference."""
    lang = negotiate(request.query_params.get("lang"), accept_language=request.headers.get("accept-language"))
    return rendering.page("landing.html.jinja2", {"t": Translator(lang), "accent": None}, nonce=security.new_nonce())
