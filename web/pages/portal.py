"""The member portal (the member's "cockpit"): points, challenges, badges, leaderboards, history.

A brand's app or email links a member to ``/portal/enter/<signed link>``; the link is exchanged for a
session cookie (HttpOnly, SameSite=Lax, path ``/portal``, 12 hours) and the member lands on the home page.
Pages are server-rendered; one small script listens for Server-Sent Events and refreshes the page's
main content when the member's progress changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.types import ExceptionHandlersMap

from engine import members as members_repo
from engine import point_views, tenants
from engine.errors import AuthenticationError, NotFound, QuestlineError
from engine.members import Member
from engine.tenants import Brand
from notifications import feed as notifications_feed
from web.deps import Services, ServicesDep
from web.i18n import N_, Translator, negotiate
from web.pages import live, rendering, security, sessions, tokens, views
from web.pages.console.base import LANG_COOKIE, accent_of, lang_cookie
from web.pages.wallet_cards import wallets_of

COOKIE = "ql_member"
#: Shortest portal session a link opens (a link about to expire still gives time to look around).
PORTAL_SESSION_MIN = timedelta(minutes=30)
PAGES = ("home", "challenges", "badges", "leaderboards", "activity")


class PortalSignInRequired(Exception):
    """No valid member session: the page explains how to get a fresh link."""


@dataclass(frozen=True, slots=True)
class PortalViewer:
    """The member looking at the portal, their brand, and how to talk to them."""

    brand: Brand
    member: Member
    t: Translator
    now: datetime
    nonce: str
    services: Services
    unread: int = 0
    """Unread notifications (the header's badge)."""


#: Handler parameter type of the member (injected by name, ``viewer``).
PortalViewerDep = NamedDependency[PortalViewer]


def member_lang(request: Request[Any, Any, Any], member: Member | None) -> str:
    """An explicit choice (``?lang=``, then the cookie) wins; then the member's locale; then the browser."""
    return negotiate(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        member.locale if member is not None else None,
        accept_language=request.headers.get("accept-language"),
    )


async def provide_portal_viewer(request: Request[Any, Any, Any], services: ServicesDep) -> PortalViewer:
    """The member behind the portal session cookie.

    Raises:
        PortalSignInRequired: no cookie, a forged or expired one, or a member that no longer exists.
    """
    now = services.clock.now()
    try:
        claims = tokens.verify(
            request.cookies.get(COOKIE, ""),
            secret=services.settings.secret,
            purpose=tokens.Purpose.PORTAL_SESSION,
            now=now,
        )
        if not await sessions.member_session_open(
            services.redis, namespace=services.settings.redis_namespace, nonce=claims.nonce
        ):
            raise PortalSignInRequired  # signed out: a copied cookie opens nothing
        async with services.db.read() as session:
            brand = await tenants.get_brand_by_id(session, claims.brand_id)
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=claims.member)
            unread = await notifications_feed.unread(session, brand_id=brand.id, member_id=member.id)
    except (AuthenticationError, NotFound) as exc:
        raise PortalSignInRequired from exc
    return PortalViewer(
        brand=brand,
        member=member,
        t=Translator(member_lang(request, member)),
        now=now,
        nonce=security.new_nonce(),
        services=services,
        unread=unread,
    )


def _notice(request: Request[Any, Any, Any], *, title: str, message: str, status: int) -> Template:
    t = Translator(member_lang(request, None))
    return rendering.page(
        "notice.html.jinja2",
        {"t": t, "accent": None, "title": t(title), "message": t(message), "icon_name": "lock"},
        nonce=security.new_nonce(),
        status_code=status,
        headers={"Referrer-Policy": "no-referrer"},
    )


def _sign_in_required(request: Request[Any, Any, Any], _: PortalSignInRequired) -> Response[Any]:
    if not request.cookies.get(COOKIE):  # never signed in here: say how to get in, not that something expired
        return _notice(
            request,
            title=N_("Sign in to your rewards"),
            message=N_(
                "The portal opens from a personal link: use the “My rewards” link in the brand's app or in one of "
                "their emails, or ask the store's staff to send you one."
            ),
            status=401,
        )
    return _notice(
        request,
        title=N_("This link has expired"),
        message=N_(
            "For your security, links to your program expire. Open the latest link from the app or email to come back in."
        ),
        status=401,
    )


def _domain_error(request: Request[Any, Any, Any], exc: QuestlineError) -> Response[Any]:
    t = Translator(member_lang(request, None))
    return rendering.page(
        "notice.html.jinja2",
        {"t": t, "accent": None, "title": t("Something went wrong"), "message": exc.detail, "icon_name": "alert"},
        nonce=security.new_nonce(),
        status_code=exc.status,
    )


def _render(
    viewer: PortalViewerDep, request: Request[Any, Any, Any], template: str, *, active: str, **context: Any
) -> Template:
    base = {
        "t": viewer.t,
        "brand": viewer.brand,
        "member": viewer.member,
        "active": active,
        "now": viewer.now,
        "tz": viewer.brand.tz,
        "accent": accent_of(viewer.brand),
        "name": viewer.member.display_name or viewer.member.external_id,
        "unread": viewer.unread,
    }
    return rendering.page(
        template,
        {**base, **context},
        nonce=viewer.nonce,
        cookies=lang_cookie(request, viewer.services, path="/portal"),
    )


PORTAL_DEPENDENCIES = {"viewer": Provide(provide_portal_viewer)}
"""Every portal controller's dependencies: the signed-in member (``viewer``)."""
PORTAL_EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    PortalSignInRequired: _sign_in_required,
    QuestlineError: _domain_error,
}
"""Every portal controller's error pages: sign in again, or the domain error in the portal's look."""


class PortalController(Controller):
    """The member's pages."""

    path = "/portal"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/enter/{token:str}")
    async def enter(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        services: ServicesDep,
        page: Annotated[str, QueryParameter(max_length=20)] = "home",
    ) -> Response[Any]:
        """Exchange a signed member link for a portal session and land on the portal."""
        now = services.clock.now()
        try:
            claims = tokens.verify(token, secret=services.settings.secret, purpose=tokens.Purpose.PORTAL_LINK, now=now)
            async with services.db.read() as session:
                brand = await tenants.get_brand_by_id(session, claims.brand_id)
                await members_repo.get_member(session, brand_id=brand.id, external_id=claims.member)
        except AuthenticationError as exc:
            if "expired" in exc.detail:
                return _notice(
                    request,
                    title=N_("This link has expired"),
                    message=N_(
                        "For your security, links to your program expire. Open the latest link from the app or email to come back in."
                    ),
                    status=401,
                )
            return _notice(
                request,
                title=N_("This link does not work"),
                message=N_("The link is incomplete or was not issued for you. Open it again from the app or email."),
                status=401,
            )
        except NotFound:
            return _notice(
                request,
                title=N_("This link does not work"),
                message=N_("The link is incomplete or was not issued for you. Open it again from the app or email."),
                status=401,
            )
        namespace = services.settings.redis_namespace
        left = int(claims.expires_at - now.timestamp())
        if not await sessions.consume_link(services.redis, namespace=namespace, nonce=claims.nonce, seconds_left=left):
            # single use: a link found in a log, a history or a forwarded email opens nothing
            return _notice(
                request,
                title=N_("This link does not work"),
                message=N_("The link is incomplete or was not issued for you. Open it again from the app or email."),
                status=401,
            )
        lifetime = max(PORTAL_SESSION_MIN, min(tokens.PORTAL_SESSION_LIFETIME, timedelta(seconds=left)))
        session_id = tokens.new_nonce()
        session_token = tokens.sign(
            secret=services.settings.secret,
            purpose=tokens.Purpose.PORTAL_SESSION,
            brand_id=brand.id,
            member=claims.member,
            expires_at=now + lifetime,
            nonce=session_id,
        )
        await sessions.open_member_session(
            services.redis, namespace=namespace, nonce=session_id, seconds=int(lifetime.total_seconds())
        )
        cookie = security.session_cookie(
            services.settings, name=COOKIE, value=session_token, path="/portal", max_age=int(lifetime.total_seconds())
        )
        target = "/portal" if page not in PAGES or page == "home" else f"/portal/{page}"
        return Redirect(target, status_code=303, cookies=[cookie], headers={"Referrer-Policy": "no-referrer"})

    @get("/", name="portal:home")
    async def home(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """Points balance, what is next, the latest activity."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        balance = await views.balance(services, brand, member.id)
        cards = await views.member_challenges(services, brand, member, now=viewer.now, t=viewer.t)
        shelf = await views.member_badges(services, brand, member, locale=viewer.t.lang)
        standings = await views.member_standings(services, brand, member, limit=3, t=viewer.t)
        recent, _ = await views.activity(services, brand, member, viewer.t, limit=5)
        async with services.db.read() as session:  # pending and expiring points for the header
            points_view = await point_views.points_view(session, brand=brand, member_id=member.id, now=viewer.now)
        upcoming = sorted(
            (c for c in cards if c.state == "active" and not c.completed),
            key=lambda c: (-c.percent, c.deadline or viewer.now),
        )
        return _render(
            viewer,
            request,
            "portal/home.html.jinja2",
            active="home",
            balance=balance,
            next_challenges=upcoming[:3],
            completed_count=sum(1 for c in cards if c.completed),
            shelf=shelf,
            badge_names=await views.badge_names(services, brand, viewer.t.lang),
            next_badge=shelf.in_progress[0] if shelf.in_progress else None,
            standings=standings,
            recent=recent,
            points_view=points_view,
            wallet_offered=any(await wallets_of(services).configured(brand.id)),
        )

    @get("/challenges", name="portal:challenges")
    async def challenges(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """Every challenge open to the member, with progress and deadlines."""
        balance = await views.balance(viewer.services, viewer.brand, viewer.member.id)
        cards = await views.member_challenges(viewer.services, viewer.brand, viewer.member, now=viewer.now, t=viewer.t)
        return _render(
            viewer,
            request,
            "portal/challenges.html.jinja2",
            active="challenges",
            balance=balance,
            active_cards=[c for c in cards if c.state == "active" and not c.completed],
            upcoming_cards=[c for c in cards if c.state == "scheduled"],
            done_cards=[c for c in cards if c.completed],
        )

    @get("/badges", name="portal:badges")
    async def badges(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """The badge shelf: earned, in progress, still locked."""
        balance = await views.balance(viewer.services, viewer.brand, viewer.member.id)
        shelf = await views.member_badges(viewer.services, viewer.brand, viewer.member, locale=viewer.t.lang)
        earned = {b.key for b in shelf.earned}
        total = len(earned) + len(shelf.locked) + len({b.key for b in shelf.in_progress} - earned)
        names = await views.badge_names(viewer.services, viewer.brand, viewer.t.lang)
        return _render(
            viewer,
            request,
            "portal/badges.html.jinja2",
            active="badges",
            balance=balance,
            shelf=shelf,
            total=total,
            badge_names=names,
        )

    @get("/leaderboards", name="portal:leaderboards")
    async def leaderboards(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """Each board's top ten with the member's own row highlighted (and their neighbourhood)."""
        balance = await views.balance(viewer.services, viewer.brand, viewer.member.id)
        standings = await views.member_standings(viewer.services, viewer.brand, viewer.member, limit=10, t=viewer.t)
        return _render(
            viewer, request, "portal/leaderboards.html.jinja2", active="leaderboards", balance=balance, boards=standings
        )

    @get("/activity", name="portal:activity")
    async def activity(
        self,
        request: Request[Any, Any, Any],
        viewer: PortalViewerDep,
        before: Annotated[int | None, QueryParameter(ge=1)] = None,
    ) -> Template:
        """The points history, newest first, 25 at a time."""
        balance = await views.balance(viewer.services, viewer.brand, viewer.member.id)
        lines, next_before = await views.activity(
            viewer.services, viewer.brand, viewer.member, viewer.t, limit=25, before=before
        )
        return _render(
            viewer,
            request,
            "portal/activity.html.jinja2",
            active="activity",
            balance=balance,
            lines=lines,
            next_before=next_before,
            first_page=before is None,
        )

    @post("/challenges/{key:str}/join", status_code=303)
    async def join(self, key: FromPath[str], viewer: PortalViewerDep) -> Redirect:
        """Opt in to a challenge's campaign (for campaigns that ask members to join)."""
        await views.opt_in(viewer.services, viewer.brand, viewer.member, challenge=key, now=viewer.now)
        return Redirect("/portal/challenges", status_code=303)

    @post("/signout", status_code=303)
    async def signout(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Redirect:
        """End the portal session (server-side, so a copied cookie stops working too) and forget the cookie."""
        claims = tokens.verify(
            request.cookies.get(COOKIE, ""),
            secret=viewer.services.settings.secret,
            purpose=tokens.Purpose.PORTAL_SESSION,
            now=viewer.now,
        )
        await sessions.close_member_session(
            viewer.services.redis, namespace=viewer.services.settings.redis_namespace, nonce=claims.nonce
        )
        cookie = security.expired_cookie(viewer.services.settings, name=COOKIE, path="/portal")
        return Redirect("/portal/signed-out", status_code=303, cookies=[cookie])

    @get("/signed-out")
    async def signed_out(self, request: Request[Any, Any, Any]) -> Template:
        """Confirmation after signing out."""
        return _notice(
            request,
            title=N_("You are signed out"),
            message=N_("Open your link from the app or email to come back."),
            status=200,
        )

    @get("/live")
    async def live_updates(self, viewer: PortalViewerDep) -> ServerSentEvent:
        """Server-Sent Events: ``update`` whenever the member's points, progress or badges may have changed."""
        services = viewer.services
        channel = live.member_channel(services.settings.redis_namespace, viewer.brand.id, viewer.member.id)
        return ServerSentEvent(
            live.updates(services.redis, [channel]),
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
