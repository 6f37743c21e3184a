"""Server-rendered pages and widgets: member portal, admin console, embeddable widgets.

Wiring for ``web/app.py``: ``routes``, ``processors(services)`` (the live-update publisher, last in the
pipeline), ``startup(services)`` and ``app_options(settings)`` (template engine and CSRF protection).
See docs/web.md.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit

from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from engine.pipeline import Processor
from engine.settings import Settings
from web.deps import Services
from web.pages import rendering, security
from web.pages.console.access import KeysController, WidgetSettingsController
from web.pages.console.auth import ConsoleAuthController
from web.pages.console.catalog import BadgesPageController, LeaderboardsPageController
from web.pages.console.dashboard import DashboardController
from web.pages.console.enrollment import EnrollmentPagesController
from web.pages.console.members import MembersController
from web.pages.console.notifications import NotificationsPageController
from web.pages.console.program import CampaignsController, ChallengesController
from web.pages.console.program_page import ProgramPageController
from web.pages.console.rewards import RedemptionsPageController, RewardsPageController
from web.pages.console.rewards_liability import LiabilityPageController
from web.pages.console.webhooks import WebhooksController
from web.pages.join import JoinController
from web.pages.league_pages import PortalLeagueController
from web.pages.links import MemberLinksController
from web.pages.live import LivePublisher
from web.pages.notifications import NotificationPagesController, UnsubscribeController
from web.pages.portal import PortalController
from web.pages.rewards import RewardsPortalController
from web.pages.segment_pages import ConsoleSegmentsController, PortalOffersController
from web.pages.selfservice import SelfServiceController
from web.pages.tier_pages import ConsoleTiersController, PortalTierController
from web.pages.wallet_pages import PortalWalletController
from web.pages.widgets import WidgetDataController, WidgetsController

STATIC_DIR = rendering.STATIC_DIR
TEMPLATES_DIR = rendering.TEMPLATES_DIR

#: Routes CSRF does not apply to: key-authenticated API, operations, docs, static files and widgets
#: (read-only, cookie-less, embedded on other sites) and badge art (public and cacheable: no cookie).
CSRF_EXCLUDE = [
    "^/v1/",
    "^/health$",
    "^/schema",
    "^/static/",
    "^/widgets/",
    "^/ob/",
    "^/art/",
    "^/segment/",
    "^/hooks/",
    "^/unsubscribe/",  # RFC 8058 one-click: a mail client's POST carries no cookie; the signed token authorises
]

routes: list[Any] = [
    create_static_files_router(
        path="/static",
        directories=[STATIC_DIR],
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=3600, public=True),
        send_as_attachment=False,
    ),
    MemberLinksController,
    PortalController,
    RewardsPortalController,
    PortalTierController,
    PortalWalletController,
    PortalLeagueController,
    ConsoleTiersController,
    ConsoleSegmentsController,
    PortalOffersController,
    ConsoleAuthController,
    DashboardController,
    CampaignsController,
    ChallengesController,
    ProgramPageController,
    BadgesPageController,
    LeaderboardsPageController,
    MembersController,
    KeysController,
    WebhooksController,
    WidgetSettingsController,
    WidgetsController,
    WidgetDataController,
    RewardsPageController,
    RedemptionsPageController,
    LiabilityPageController,
    JoinController,
    SelfServiceController,
    EnrollmentPagesController,
    NotificationPagesController,
    UnsubscribeController,
    NotificationsPageController,
]


def processors(services: Services) -> list[Processor]:
    """The pages' pipeline step: the live-update publisher (it must run last, after every domain's)."""
    return [LivePublisher(services.redis, namespace=services.settings.redis_namespace)]


async def startup(services: Services) -> None:
    """Nothing to prepare: ``web/app.py`` puts :func:`processors` after every domain's step."""


def app_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``Litestar(...)`` that the pages need."""
    csrf_secret = hashlib.sha256(f"questline:csrf:{settings.secret}".encode()).hexdigest()
    return {
        "template_config": TemplateConfig(instance=rendering.template_engine()),
        "csrf_config": CSRFConfig(
            secret=csrf_secret,
            cookie_name="ql_csrf",
            cookie_httponly=True,
            cookie_samesite="lax",
            cookie_secure=security.is_https(settings),
            # Wallet on devices calls the PassKit web service (ApplePass token, no cookies) under its own path.
            exclude=[*CSRF_EXCLUDE, f"^{re.escape(urlsplit(settings.passkit_url).path.rstrip('/'))}/v1/"],
        ),
    }
