"""The member's wallet card in the portal, and its "Add to Apple Wallet" / "Save to Google Wallet" buttons.

The page shows what the card shows, live: points, tier, rank and challenge progress. Each button appears only
when the brand configured that wallet.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.response import Redirect, Template

from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
)
from web.pages.wallet_cards import card_state, pkpass_response, wallets_of


class PortalWalletController(Controller):
    """``/portal/wallet``: the card and the buttons; the pass download and the Google link."""

    path = "/portal/wallet"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    async def _board(self, viewer: PortalViewerDep) -> str | None:
        status = await wallets_of(viewer.services).status(viewer.brand.id)
        return status.apple.board if status.apple is not None else None

    @get("/", name="portal:wallet")
    async def card(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """The card as a wallet shows it, and the buttons the brand offers."""
        services, brand = viewer.services, viewer.brand
        status = await wallets_of(services).status(brand.id)
        board = status.apple.board if status.apple is not None else None
        state = await card_state(services, brand, viewer.member, board=board)
        return _render(
            viewer,
            request,
            "portal/wallet.html.jinja2",
            active="home",
            card=state,
            balance=state.points,
            apple=status.apple is not None,
            google=status.google is not None,
        )

    @get("/apple.pkpass")
    async def apple(self, viewer: PortalViewerDep) -> Response[bytes]:
        """The member's signed Apple Wallet pass (404 when the brand has not configured Apple Wallet)."""
        state = await card_state(viewer.services, viewer.brand, viewer.member, board=await self._board(viewer))
        issued = await wallets_of(viewer.services).apple_pass(viewer.brand, viewer.member.id, state)
        return pkpass_response(issued.data, issued.updated_s)

    @get("/google")
    async def google(self, viewer: PortalViewerDep) -> Redirect:
        """Off to Google's "Save to Google Wallet" page with the member's signed object."""
        state = await card_state(viewer.services, viewer.brand, viewer.member)
        url = await wallets_of(viewer.services).google_save_url(viewer.brand, state)
        return Redirect(url, status_code=303, headers={"Referrer-Policy": "no-referrer"})
