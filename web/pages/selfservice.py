"""Self-service portal pages: invite friends, profile, privacy on boards, data export, erasure request.

They share the portal's session, viewer and error pages (``web.pages.portal``). Privacy reuses the
leaderboards' display preference (opt out of public boards, initials or a pseudonym); the export is the
same document the brand's ``GET /v1/members/{id}/export`` answers; an erasure request is recorded and
completed by the brand in the console with the existing erasure.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from engine import members as members_repo
from engine import points
from engine.errors import ValidationError
from engine.members import MemberIn
from enrollment import service as enrollment
from leaderboards.models import Preference
from referrals import service as referrals
from web import exports  # the module: web.exports imports web.pages (a cycle at import time)
from web.pages.join import join_url
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
LANGUAGES = ("", "en", "it")


class SelfServiceController(Controller):
    """The member's own settings and invitations."""

    path = "/portal"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/invite", name="portal:invite")
    async def invite(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """The member's referral link, a share button, and how many friends joined and qualified."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        async with services.db.write() as session:
            code = await referrals.code_for(session, brand_id=brand.id, member_id=member.id, now=viewer.now)
            funnel = await referrals.funnel(session, brand_id=brand.id, referrer_id=member.id)
            balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
        policy = referrals.policy_of(brand.settings)
        return _render(
            viewer, request, "portal/invite.html.jinja2", active="invite", balance=balance,
            link=join_url(services, brand, ref=code), code=code, funnel=funnel, policy=policy,
        )  # fmt: skip

    @get("/account", name="portal:account")
    async def account(
        self,
        request: Request[Any, Any, Any],
        viewer: PortalViewerDep,
        saved: Annotated[str, QueryParameter(max_length=20)] = "",
    ) -> Template:
        """Profile, privacy on boards, export and erasure."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        preference = await services.leaderboards.get_preference(brand, member.external_id)
        async with services.db.read() as session:
            balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
            pending = any(
                r.member == member.external_id for r in await enrollment.erasure_requests(session, brand_id=brand.id)
            )
        return _render(
            viewer, request, "portal/account.html.jinja2", active="account", balance=balance,
            preference=preference, erasure_pending=pending, saved=saved[:20],
        )  # fmt: skip

    @post("/account/profile", status_code=303)
    async def profile(self, viewer: PortalViewerDep, data: FormData) -> Redirect:
        """Change the display name and language."""
        services, brand, member = viewer.services, viewer.brand, viewer.member
        language = data.get("locale", "")
        if language not in LANGUAGES:
            raise ValidationError("choose English or Italiano", field="locale")
        name = data.get("display_name", "").strip()[:200]
        await members_repo.upsert_member(
            services.db,
            brand_id=brand.id,
            data=MemberIn(external_id=member.external_id, display_name=name, locale=language),
            now=viewer.now,
        )
        for hook in services.member_update_hooks:
            await hook(brand, member.id)
        return Redirect("/portal/account?saved=profile", status_code=303)

    @post("/account/privacy", status_code=303)
    async def privacy(self, viewer: PortalViewerDep, data: FormData) -> Redirect:
        """Opt out of public boards, or show initials or a pseudonym."""
        display = data.get("display", "")
        try:
            preference = msgspec.convert(
                {
                    "opt_out": data.get("opt_out") == "yes",
                    "display": display,
                    "pseudonym": data.get("pseudonym", "")[:40],
                },
                Preference,
            )
        except msgspec.ValidationError as exc:
            raise ValidationError(str(exc), field="privacy") from exc
        await viewer.services.leaderboards.set_preference(viewer.brand, viewer.member.external_id, preference)
        return Redirect("/portal/account?saved=privacy", status_code=303)

    @get("/account/export")
    async def export(self, viewer: PortalViewerDep) -> Response[bytes]:
        """Download one's own data as JSON (the brand's member export)."""
        brand = viewer.brand
        document = await exports.build_export(
            viewer.services, brand, viewer.member.external_id
        )  # the primary: own data
        return Response(
            msgspec.json.encode(document),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="{brand.slug}-my-data.json"',
                "Cache-Control": "no-store",
            },
        )

    @post("/account/erase", status_code=303)
    async def erase(self, viewer: PortalViewerDep, data: FormData) -> Redirect:
        """Record a request to erase the account (the brand completes it)."""
        if data.get("confirm") != "yes":
            raise ValidationError("tick the box to confirm", field="confirm")
        async with viewer.services.db.write() as session:
            await enrollment.request_erasure(
                session, brand_id=viewer.brand.id, member_id=viewer.member.id,
                external_id=viewer.member.external_id, now=viewer.now,
            )  # fmt: skip
        return Redirect("/portal/account?saved=erase", status_code=303)
