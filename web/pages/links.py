"""``POST /v1/members/{id}/portal-link`` and ``/widget-token``: signed, expiring member links (secret key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec
from litestar import Controller, post
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import members as members_repo
from engine.ids import BrandId
from web.deps import PrincipalDep, Services, ServicesDep, provide_secret_principal
from web.pages import tokens

MAX_SECONDS = int(tokens.MAX_LINK_LIFETIME.total_seconds())
#: Portal links open the portal once; a week is the longest they wait to be used (a day by default).
MAX_PORTAL_LINK_SECONDS = 7 * 86400
PortalPage = Literal["home", "challenges", "badges", "leaderboards", "activity"]


class PortalLinkIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of a portal link."""

    expires_in: Annotated[int, msgspec.Meta(ge=60, le=MAX_PORTAL_LINK_SECONDS)] = 86400
    """Seconds the link stays valid if unused (1 minute to 7 days; one day by default). It opens the portal once."""
    page: PortalPage = "home"
    """The portal page the link opens."""


class PortalLinkOut(msgspec.Struct, frozen=True, kw_only=True):
    """A signed link to a member's portal: put it in an email or open it from the brand's app."""

    member: str
    url: str
    expires_at: datetime


class WidgetTokenIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Options of a widget member token."""

    expires_in: Annotated[int, msgspec.Meta(ge=60, le=MAX_SECONDS)] = 86400
    """Seconds the token stays valid (1 minute to 30 days; one day by default)."""


class WidgetTokenOut(msgspec.Struct, frozen=True, kw_only=True):
    """A signed member token for widgets (``data-member`` / ``?member=``): highlights the member, reads their shelf."""

    member: str
    token: str
    expires_at: datetime


async def sign_for_member(
    services: Services, brand_id: BrandId, external_id: str, *, purpose: tokens.Purpose, expires_in: int
) -> tuple[str, str, datetime]:
    """Sign a token for an existing member, valid ``expires_in`` seconds from now; returns member, token, expiry.

    Raises:
        NotFound: no such member in the brand.
    """
    async with services.db.read() as session:
        member = await members_repo.get_member(session, brand_id=brand_id, external_id=external_id)
    expires_at = services.clock.now() + timedelta(seconds=expires_in)
    token = tokens.sign(
        secret=services.settings.secret,
        purpose=purpose,
        brand_id=brand_id,
        member=member.external_id,
        expires_at=expires_at,
    )
    return member.external_id, token, expires_at


class MemberLinksController(Controller):
    """Signed member links for the portal and the widgets."""

    path = "/v1/members"
    tags = ["members"]  # noqa: RUF012
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @post(
        "/{external_id:str}/portal-link",
        summary="Create a signed member portal link",
        description=(
            "A link that signs the member in to their portal (points, challenges, badges, leaderboards, history). "
            "It is an HMAC-signed, expiring, single-use URL: the first visit exchanges it for a portal session and "
            "later visits are refused, so create a fresh link each time (and send it only to the member). "
            "The member must exist (enrol with `POST /v1/members`)."
        ),
        status_code=201,
    )
    async def portal_link(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[PortalLinkIn | None] = None,
    ) -> PortalLinkOut:
        """Sign a portal link for the member."""
        options = data or PortalLinkIn()
        member, token, expires_at = await sign_for_member(
            services,
            principal.brand.id,
            external_id,
            purpose=tokens.Purpose.PORTAL_LINK,
            expires_in=options.expires_in,
        )
        query = "" if options.page == "home" else f"?page={options.page}"
        url = f"{services.settings.public_url.rstrip('/')}/portal/enter/{token}{query}"
        return PortalLinkOut(member=member, url=url, expires_at=expires_at.replace(microsecond=0))

    @post(
        "/{external_id:str}/widget-token",
        summary="Create a signed member token for widgets",
        description=(
            "A token for the widgets' `data-member` attribute (or `?member=`): the leaderboard widget highlights "
            "the member, the badge-shelf widget shows their badges. It cannot open the portal."
        ),
        status_code=201,
    )
    async def widget_token(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[WidgetTokenIn | None] = None,
    ) -> WidgetTokenOut:
        """Sign a widget token for the member."""
        options = data or WidgetTokenIn()
        member, token, expires_at = await sign_for_member(
            services,
            principal.brand.id,
            external_id,
            purpose=tokens.Purpose.WIDGET_MEMBER,
            expires_in=options.expires_in,
        )
        return WidgetTokenOut(member=member, token=token, expires_at=expires_at.replace(microsecond=0))
