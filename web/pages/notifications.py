"""Notification pages: the member's feed and email choices (portal), and the one-click unsubscribe.

The feed marks entries read one by one or all at once; the portal header shows the unread count on every
page and the portal's live stream refreshes it. ``/unsubscribe/<token>`` needs no session: ``GET`` shows a
confirmation with one button, ``POST`` (the button, or a mail client's RFC 8058 one-click request, which
carries no cookie — hence no CSRF check) turns that kind of email off.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from engine import points, tenants
from engine.errors import AuthenticationError, NotFound, ValidationError
from engine.ids import BrandId
from notifications import feed, preferences
from notifications.models import KINDS, MemberChoices, controls_of
from web.deps import ServicesDep
from web.i18n import N_, Translator
from web.notify_mail import line, read_unsubscribe_token
from web.pages import rendering, security
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
    member_lang,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

#: What each kind is called on the pages.
KIND_LABELS = {
    "badge_earned": N_("Badges you earn"),
    "challenge_completed": N_("Challenges you complete"),
    "tier_changed": N_("Changes to your tier"),
    "points_expiring": N_("Points about to expire"),
    "reward_redeemed": N_("Rewards you redeem"),
    "overtaken": N_("When someone overtakes you on a leaderboard"),
    "referral_qualified": N_("Friends you invited"),
}


class NotificationPagesController(Controller):
    """The member's feed and email choices."""

    path = "/portal/notifications"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/", name="portal:notifications")
    async def feed_page(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """The feed, newest first."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        async with services.db.read() as session:
            found = await feed.items(session, brand_id=brand.id, member_id=member.id)
            balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
        entries = [
            {
                "id": i.id,
                "kind": i.kind,
                "text": line(i.kind, i.data, lang=viewer.t.lang),
                "at": i.created_at,
                "read": i.read,
            }
            for i in found
        ]
        return _render(
            viewer, request, "portal/notifications.html.jinja2", active="notifications", entries=entries,
            balance=balance,
        )  # fmt: skip

    @post("/read", status_code=303)
    async def mark_read(self, viewer: PortalViewerDep, data: FormData) -> Redirect:
        """Mark one notification (``id``) or all of them (``all=yes``) read."""
        ids: list[int] | None
        if data.get("all") == "yes":
            ids = None
        else:
            raw = data.get("id", "")
            if not raw.isdigit() or len(raw) > 18:
                raise ValidationError("which notification?", field="id")
            ids = [int(raw)]
        async with viewer.services.db.write() as session:
            await feed.mark_read(session, brand_id=viewer.brand.id, member_id=viewer.member.id, now=viewer.now, ids=ids)
        return Redirect("/portal/notifications", status_code=303)

    @get("/settings", name="portal:notification-settings")
    async def settings_page(
        self,
        request: Request[Any, Any, Any],
        viewer: PortalViewerDep,
        saved: Annotated[str, QueryParameter(max_length=20)] = "",
    ) -> Template:
        """Which notifications come by email, and instant or one daily digest."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        async with services.db.read() as session:
            chosen = await preferences.choices(session, brand_id=brand.id, member_id=member.id)
            has_email = await preferences.has_email(session, brand_id=brand.id, member_id=member.id)
            balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
        controls = controls_of(brand.settings)
        kinds = [(k, viewer.t(KIND_LABELS[k]), k not in chosen.email_off) for k in KINDS if k in controls.enabled]
        return _render(
            viewer, request, "portal/notification_settings.html.jinja2", active="notifications",
            kinds=kinds, digest=chosen.digest, email_on=controls.email, has_email=has_email,
            saved=saved == "yes", digest_hour=controls.digest_hour, balance=balance,
        )  # fmt: skip

    @post("/settings", status_code=303)
    async def save_settings(self, viewer: PortalViewerDep, data: FormData) -> Redirect:
        """Store the choices: a kind not ticked is off by email."""
        mode = data.get("mode", "instant")
        if mode not in ("instant", "digest"):
            raise ValidationError("choose instant or daily digest", field="mode")
        controls = controls_of(viewer.brand.settings)
        off = [k for k in KINDS if k in controls.enabled and data.get(f"email_{k}") != "yes"]
        async with viewer.services.db.write() as session:
            await preferences.save_choices(
                session, brand_id=viewer.brand.id, member_id=viewer.member.id,
                chosen=MemberChoices(email_off=off, digest=mode == "digest"), now=viewer.now,
            )  # fmt: skip
        return Redirect("/portal/notifications/settings?saved=yes", status_code=303)


class UnsubscribeController(Controller):
    """One-click unsubscribe from notification emails (RFC 8058), no session needed."""

    path = "/unsubscribe"
    include_in_schema = False

    async def _resolve(
        self, request: Request[Any, Any, Any], services: ServicesDep, token: str
    ) -> tuple[tenants.Brand, int, str, Translator]:
        brand_id, member_id, kind = read_unsubscribe_token(services.settings.secret, token)
        async with services.db.read() as session:
            brand = await tenants.get_brand_by_id(session, BrandId(brand_id))
        return brand, member_id, kind, Translator(member_lang(request, None))

    def _page(
        self, t: Translator, brand: tenants.Brand | None, *, kind: str, token: str, done: bool, status: int = 200
    ) -> Template:
        what = t(KIND_LABELS[kind]) if kind in KIND_LABELS else t("all emails")
        return rendering.page(
            "unsubscribe.html.jinja2",
            {"t": t, "accent": None, "brand": brand, "what": what, "token": token, "done": done},
            nonce=security.new_nonce(),
            status_code=status,
            headers={"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"},
        )

    def _invalid(self, request: Request[Any, Any, Any]) -> Template:
        t = Translator(member_lang(request, None))
        return rendering.page(
            "notice.html.jinja2",
            {
                "t": t, "accent": None, "title": t("This link does not work"), "icon_name": "lock",
                "message": t("The unsubscribe link is incomplete. Use the link from the latest email, or change your choices in the portal."),
            },
            nonce=security.new_nonce(),
            status_code=400,
        )  # fmt: skip

    @get("/{token:str}")
    async def confirm(self, request: Request[Any, Any, Any], token: FromPath[str], services: ServicesDep) -> Template:
        """Say what the link stops, with one button (a GET changes nothing: link scanners follow links)."""
        try:
            brand, _, kind, t = await self._resolve(request, services, token)
        except (AuthenticationError, NotFound):
            return self._invalid(request)
        return self._page(t, brand, kind=kind, token=token, done=False)

    @post("/{token:str}", status_code=200)
    async def unsubscribe(
        self, request: Request[Any, Any, Any], token: FromPath[str], services: ServicesDep
    ) -> Template:
        """Turn that kind of email off (the button, or a mail client's one-click POST)."""
        try:
            brand, member_id, kind, t = await self._resolve(request, services, token)
        except (AuthenticationError, NotFound):
            return self._invalid(request)
        async with services.db.write() as session:
            try:
                await preferences.unsubscribe(
                    session, brand_id=brand.id, member_id=member_id, kind=kind, now=services.clock.now()
                )
            except ValidationError:
                return self._invalid(request)
        return self._page(t, brand, kind=kind, token=token, done=True)
