"""The portal's Rewards tab: the catalog as the member sees it, redeem with a confirmation step, codes with QR.

The confirmation page carries a fresh idempotency key in the form, so a double submit or a reload of the
POST redeems once. Refusals (points, stock, limit…) come back on the confirmation page in words.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from markupsafe import Markup

from engine import point_views
from engine.errors import Conflict, InsufficientPoints, NotFound
from rewards import repository as rewards_repo
from rewards import service as rewards_service
from rewards.models import CatalogEntry, LimitReached, NotRedeemable, OutOfStock, Redemption
from web.i18n import N_
from web.i18n.localized import Localized
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
)
from web.qr import qr_svg

#: Why a reward cannot be redeemed now, in words (see :attr:`rewards.models.CatalogEntry.reason`).
REASONS = {
    "paused": N_("Not available at the moment"),
    "not_started": N_("Coming soon"),
    "ended": N_("No longer available"),
    "ineligible": N_("Not available for your membership"),
    "limit": N_("You have reached the limit for this reward."),
    "out_of_stock": N_("Out of stock"),
}
REFUSALS: tuple[tuple[type[Conflict], str], ...] = (
    (InsufficientPoints, N_("You do not have enough points for this reward.")),
    (OutOfStock, N_("Sorry, this reward has just run out.")),
    (LimitReached, N_("You have reached the limit for this reward.")),
    (NotRedeemable, N_("This reward cannot be redeemed right now.")),
)


def local_text(names: dict[str, str], lang: str) -> Localized:
    """A brand text in the page's language if it has one (else English, else any), marked with its language."""
    if not names:
        return Localized(text="")
    for candidate in (lang, lang.split("-")[0], "en"):
        if candidate in names:
            return Localized(text=names[candidate], lang=candidate)
    first = next(iter(names))
    return Localized(text=names[first], lang=first)


class RedeemForm(msgspec.Struct, kw_only=True):
    """The confirmation form."""

    idempotency_key: str = ""


async def _points(viewer: PortalViewerDep) -> point_views.PointsView:
    async with viewer.services.db.read() as session:
        return await point_views.points_view(session, brand=viewer.brand, member_id=viewer.member.id, now=viewer.now)


async def _entry(viewer: PortalViewerDep, key: str) -> CatalogEntry:
    async with viewer.services.db.read() as session:
        entries = await rewards_service.catalog(
            session, viewer.brand, member=viewer.member, now=viewer.now, segments=viewer.services.segments
        )
    for entry in entries:
        if entry.reward.key == key:
            return entry
    raise NotFound(f"no reward {key!r}", field="reward")


class RewardsPortalController(Controller):
    """The member's Rewards tab."""

    path = "/portal/rewards"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/", name="portal:rewards")
    async def catalog(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """What the member can redeem now, how many points are missing for the rest, and their redemptions."""
        async with viewer.services.db.read() as session:
            entries = await rewards_service.catalog(
                session, viewer.brand, member=viewer.member, now=viewer.now, segments=viewer.services.segments
            )
            mine = await rewards_repo.list_redemptions(
                session, brand_id=viewer.brand.id, member_id=viewer.member.id, limit=20
            )
        view = await _points(viewer)
        lang = viewer.t.lang
        return _render(
            viewer,
            request,
            "portal/rewards.html.jinja2",
            active="rewards",
            balance=view.available,
            points_view=view,
            affordable=[e for e in entries if e.redeemable],
            out_of_reach=[e for e in entries if not e.redeemable],
            redemptions=[r for _, r in mine],
            name_of=lambda names: local_text(names, lang),
            reasons=REASONS,
        )

    @get("/{key:str}/redeem", name="portal:redeem-confirm")
    async def confirm(self, request: Request[Any, Any, Any], viewer: PortalViewerDep, key: FromPath[str]) -> Template:
        """The confirmation step: what it costs and what is left after."""
        return await self._confirm_page(request, viewer, key, error=None)

    async def _confirm_page(
        self, request: Request[Any, Any, Any], viewer: PortalViewerDep, key: str, *, error: str | None
    ) -> Template:
        entry = await _entry(viewer, key)
        view = await _points(viewer)
        lang = viewer.t.lang
        return _render(
            viewer,
            request,
            "portal/reward_confirm.html.jinja2",
            active="rewards",
            balance=view.available,
            points_view=view,
            entry=entry,
            name=local_text(entry.reward.name, lang),
            description=local_text(entry.reward.description, lang),
            idempotency_key=secrets.token_urlsafe(16),
            error=error,
            reasons=REASONS,
        )

    @post("/{key:str}/redeem", name="portal:redeem", status_code=303)
    async def redeem(
        self,
        request: Request[Any, Any, Any],
        viewer: PortalViewerDep,
        key: FromPath[str],
        data: Annotated[RedeemForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        """Redeem after confirmation; refusals come back on the confirmation page."""
        idem = data.idempotency_key.strip()[:255] or secrets.token_urlsafe(16)
        try:
            async with viewer.services.db.write() as session:
                # A reward hidden from the portal is not redeemable from it either (staff may redeem it by API).
                row = await rewards_repo.reward_row(session, brand_id=viewer.brand.id, key=key)
                if not rewards_repo.to_reward(row.spec).spec.visible:
                    raise NotFound(f"no reward {key!r}", field="reward")
                outcome = await rewards_service.redeem(
                    session,
                    viewer.brand,
                    member=viewer.member,
                    reward_key=key,
                    idempotency_key=f"portal:{idem}",
                    now=viewer.now,
                    segments=viewer.services.segments,
                )
        except Conflict as exc:
            message = next((text for kind, text in REFUSALS if isinstance(exc, kind)), REFUSALS[-1][1])
            page = await self._confirm_page(request, viewer, key, error=viewer.t(message))
            page.status_code = 409
            return page
        viewer.services.outbox.notify()
        return Redirect(f"/portal/rewards/redemptions/{outcome.redemption.id}", status_code=303)

    @get("/redemptions/{redemption_id:str}", name="portal:redemption")
    async def redemption(
        self, request: Request[Any, Any, Any], viewer: PortalViewerDep, redemption_id: FromPath[str]
    ) -> Template:
        """One of the member's redemptions: the code and its QR code to show at the till."""
        found = await _own(viewer, redemption_id)
        view = await _points(viewer)
        qr = None
        if found.code is not None:
            qr = Markup(qr_svg(found.code, title=found.code).decode())
        return _render(
            viewer,
            request,
            "portal/redemption.html.jinja2",
            active="rewards",
            balance=view.available,
            points_view=view,
            redemption=found,
            name=local_text(found.name, viewer.t.lang),
            qr=qr,
        )


async def _own(viewer: PortalViewerDep, redemption_id: str) -> Redemption:
    async with viewer.services.db.read() as session:
        found = await rewards_repo.get_redemption(session, brand_id=viewer.brand.id, public_id=redemption_id)
    if found.member != viewer.member.external_id:
        raise NotFound(f"no redemption {redemption_id!r}", field="redemption")
    return found
