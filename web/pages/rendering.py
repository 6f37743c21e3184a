"""The Jinja2 environment (autoescaping on), cache-busted static URLs, and the page response helper."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from litestar.datastructures import Cookie
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from markupsafe import Markup, escape

from web.i18n import Translator
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
    env.add_extension("jinja2.ext.i18n")
    # jinja2.ext.i18n's `{% trans %}` calls these newstyle (values as keywords); unlike its own wrappers,
    # they escape the translation itself as well as each value: messages are text, never markup.
    env.newstyle_gettext = True  # type: ignore[attr-defined]  # set by jinja2.ext.i18n
    env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext, pgettext=_pgettext, npgettext=_npgettext)
    env.globals["asset"] = asset
    env.globals["accent_vars"] = colors.accent_variables
    env.filters["code_spans"] = code_spans
    return env


_CODE_SPAN = re.compile(r"`([^`]+)`")


def code_spans(text: str) -> Markup:
    """Text (escaped unless it is already markup) with its `backtick` spans shown as ``<code>``, never literally."""
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


def _translator(context: Context) -> Translator:
    found = context.get("t")
    return found if isinstance(found, Translator) else Translator("en")


def _fill(text: str, values: dict[str, Any]) -> Markup:
    """The message escaped, then its ``%(name)s`` placeholders filled with escaped values."""
    return escape(text) % values


@pass_context
def _gettext(context: Context, message: str, /, **values: Any) -> Markup:
    """``{{ _("Text %(name)s", name=value) }}`` in the page's language (the ``t`` in the context)."""
    return _fill(_translator(context).gettext(message), values)


@pass_context
def _pgettext(context: Context, msgctxt: str, message: str, /, **values: Any) -> Markup:
    """``{{ pgettext("context", "Text") }}``: a message that translates differently in ``context``."""
    return _fill(_translator(context).pgettext(msgctxt, message), values)


@pass_context
def _ngettext(context: Context, singular: str, plural: str, num: int, /, **values: Any) -> Markup:
    """``{{ ngettext("%(count)s badge", "%(count)s badges", n) }}``; ``count`` is ``n`` formatted."""
    t = _translator(context)
    values.setdefault("count", t.number(num))
    values.setdefault("num", values["count"])
    return _fill(t.ngettext(singular, plural, num), values)


@pass_context
def _npgettext(context: Context, msgctxt: str, singular: str, plural: str, num: int, /, **values: Any) -> Markup:
    """:func:`_ngettext` with a message context."""
    t = _translator(context)
    values.setdefault("count", t.number(num))
    values.setdefault("num", values["count"])
    return _fill(t.npgettext(msgctxt, singular, plural, num), values)


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
