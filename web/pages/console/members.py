"""Console member lookup: profile, points history, challenges, badges; grant/revoke badges, adjust points."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from badges import service as badges_service
from engine import members as members_repo
from engine import points
from engine.errors import NotFound, QuestlineError
from engine.members import Member
from web.pages import tokens, views
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
_INTEGER = re.compile(r"^[+-]?\d{1,10}$")
SUPPORT_LINK_MINUTES = 15


def member_path(member: Member | str) -> str:
    """The console URL of a member."""
    external_id = member if isinstance(member, str) else member.external_id
    return f"/console/members/{quote(external_id, safe='')}"


class MembersController(Controller):
    """Find a member and look after them."""

    path = "/console/members"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        q: Annotated[str, QueryParameter(max_length=200)] = "",
    ) -> Template:
        """Search by external id or name (recently active members when the query is empty)."""
        found = await views.search_members(viewer.services, viewer.brand, q.strip())
        return render(viewer, "console/members.html.jinja2", active="members", request=request, q=q, found=found)

    async def _member(self, viewer: ConsoleViewerDep, external_id: str) -> Member:
        async with viewer.services.db.read() as session:
            return await members_repo.get_member(session, brand_id=viewer.brand.id, external_id=external_id)

    async def _page(
        self,
        viewer: ConsoleViewerDep,
        request: Request[Any, Any, Any],
        member: Member,
        *,
        errors: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        link: tuple[str, Any] | None = None,
        status_code: int = 200,
    ) -> Template:
        services, brand, t = viewer.services, viewer.brand, viewer.t
        balance = await views.balance(services, brand, member.id)
        lines, _ = await views.activity(services, brand, member, t, limit=15)
        cards = await views.member_challenges(services, brand, member, now=viewer.now, t=t)
        shelf = await views.member_badges(services, brand, member)
        definitions = [b for b in await views.badge_definitions(services, brand) if b.active]
        return render(
            viewer,
            "console/member.html.jinja2",
            active="members",
            request=request,
            status_code=status_code,
            member=member,
            balance=balance,
            lines=lines,
            cards=cards,
            shelf=shelf,
            definitions=definitions,
            badge_options=[(b.key, b.name) for b in definitions],
            errors=errors or {},
            form=form or {},
            link=link,
            path=member_path(member),
        )

    @get("/{external_id:str}")
    async def member(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, external_id: FromPath[str]
    ) -> Template:
        """A member's profile, points, challenges and badges."""
        return await self._page(viewer, request, await self._member(viewer, external_id))

    @post("/{external_id:str}/points")
    async def adjust(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, external_id: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Post a points correction with a reason (a new ledger entry; entries are never edited)."""
        member = await self._member(viewer, external_id)
        raw_points, reason = data.get("points", "").strip(), data.get("reason", "").strip()
        errors: dict[str, str] = {}
        if not _INTEGER.match(raw_points) or int(raw_points) == 0 or abs(int(raw_points)) > points.MAX_ADJUSTMENT:
            errors["points"] = viewer.t("Enter a whole number other than zero.")
        if not reason or len(reason) > 500:
            errors["reason"] = viewer.t("Give a reason (up to 500 characters).")
        if errors:
            return await self._page(viewer, request, member, errors=errors, form=data, status_code=422)
        brand, now = viewer.brand, viewer.now
        async with viewer.services.db.write() as session:
            await points.post_entry(
                session,
                brand_id=brand.id,
                member_id=member.id,
                points=int(raw_points),
                source="adjustment",
                key="manual",
                reason=f"{reason} ({viewer.admin.email})",
                occurred_at=now,
                tz=brand.tz,
                now=now,
            )
        return done(member_path(member), "adjusted")

    @post("/{external_id:str}/badges/grant")
    async def grant(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, external_id: FromPath[str], data: FormData
    ) -> Template | Redirect:
        """Grant a badge by hand, with a reason."""
        member = await self._member(viewer, external_id)
        badge, reason = data.get("badge", "").strip(), data.get("grant_reason", "").strip()
        errors: dict[str, str] = {}
        if not badge:
            errors["badge"] = viewer.t("Choose a badge.")
        if not reason or len(reason) > 500:
            errors["grant_reason"] = viewer.t("Give a reason (up to 500 characters).")
        if not errors:
            try:
                async with viewer.services.db.write() as session:
                    await badges_service.grant(
                        session,
                        brand=viewer.brand,
                        member_id=member.id,
                        badge_key=badge,
                        reason=reason,
                        source="manual",
                        source_ref="",
                        now=viewer.now,
                        urls=views.badge_urls(viewer.services),
                    )
            except QuestlineError as exc:
                errors["badge"] = exc.detail
        if errors:
            form = {**data, "grant_reason": reason}
            return await self._page(viewer, request, member, errors=errors, form=form, status_code=422)
        return done(member_path(member), "granted")

    @post("/{external_id:str}/badges/{badge:str}/revoke")
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        external_id: FromPath[str],
        badge: FromPath[str],
        data: FormData,
    ) -> Template | Redirect:
        """Revoke a member's badge with a reason (its public assertion then answers as revoked)."""
        member = await self._member(viewer, external_id)
        reason = data.get("reason", "").strip() or viewer.t("Revoked by %(email)s", email=viewer.admin.email)
        try:
            async with viewer.services.db.write() as session:
                await badges_service.revoke(
                    session,
                    brand=viewer.brand,
                    member_id=member.id,
                    badge_key=badge,
                    reason=reason[:500],
                    now=viewer.now,
                    urls=views.badge_urls(viewer.services),
                )
        except NotFound as exc:
            return await self._page(viewer, request, member, errors={"revoke": exc.detail}, status_code=404)
        return done(member_path(member), "revoked")

    @post("/{external_id:str}/portal-link")
    async def portal_link(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, external_id: FromPath[str]
    ) -> Template:
        """A short-lived portal link, to see what the member sees (support)."""
        member = await self._member(viewer, external_id)
        expires_at = viewer.now + timedelta(minutes=SUPPORT_LINK_MINUTES)
        token = tokens.sign(
            secret=viewer.services.settings.secret,
            purpose=tokens.Purpose.PORTAL_LINK,
            brand_id=viewer.brand.id,
            member=member.external_id,
            expires_at=expires_at,
        )
        url = f"{viewer.services.settings.public_url.rstrip('/')}/portal/enter/{token}"
        return await self._page(viewer, request, member, link=(url, expires_at))
