"""Server-rendered pages and widgets: member portal, admin console, embeddable widgets.

Wiring for ``web/app.py``: ``routes``, ``startup(services)`` and ``app_options(settings)`` (template engine,
static files and any app-level middleware the pages need).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from engine.settings import Settings
from web.deps import Services

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

routes: list[Any] = [create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False)]


async def startup(services: Services) -> None:
    """Nothing to prepare yet."""


def app_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Litestar(...)`` that the pages need."""
    return {"template_config": TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine)}
