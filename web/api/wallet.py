"""Wallet passes over the brand's API: Apple/Google settings (keys never answered), members' passes and links."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import members as members_repo
from wallet.models import AppleSettings, GoogleSettings
from wallet.service import APPLE, GOOGLE, AppleStatus, GoogleStatus, WalletStatus
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers, problems
from web.pages.wallet_cards import PKPASS, card_state, pkpass_response, wallets_of
from web.schemas.wallet import SaveLinkOut


class WalletSettingsController(Controller):
    """The brand's Apple and Google Wallet settings (secret key)."""

    path = "/v1/wallet"
    tags = ("wallet",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="Get wallet settings")
    async def get_settings(self, services: ServicesDep, principal: PrincipalDep) -> WalletStatus:
        """Which wallets the brand configured, without their private keys."""
        return await wallets_of(services).status(principal.brand.id)

    @put(
        "/apple", summary="Set Apple Wallet settings", responses=answers(201, AppleStatus, "The settings were created")
    )
    async def put_apple(
        self, data: JSONBody[AppleSettings], services: ServicesDep, principal: PrincipalDep
    ) -> Response[AppleStatus]:
        """The Pass Type ID certificate, its key and the WWDR certificate (PEM), checked and stored (key sealed).

        422 when the key does not match the certificate, the WWDR certificate did not issue it, or it is not valid now.
        """
        status, created = await wallets_of(services).configure_apple(principal.brand.id, data)
        return Response(status, status_code=201 if created else 200)

    @delete("/apple", summary="Remove Apple Wallet settings", responses=problems(404))
    async def delete_apple(self, services: ServicesDep, principal: PrincipalDep) -> None:
        """Members can no longer download Apple passes; issued ones stop updating."""
        await wallets_of(services).remove(principal.brand.id, APPLE)

    @put(
        "/google",
        summary="Set Google Wallet settings",
        responses=answers(201, GoogleStatus, "The settings were created"),
    )
    async def put_google(
        self, data: JSONBody[GoogleSettings], services: ServicesDep, principal: PrincipalDep
    ) -> Response[GoogleStatus]:
        """The issuer id and the service account's email and RSA key (sealed at rest)."""
        status, created = await wallets_of(services).configure_google(principal.brand.id, data)
        return Response(status, status_code=201 if created else 200)

    @delete("/google", summary="Remove Google Wallet settings", responses=problems(404))
    async def delete_google(self, services: ServicesDep, principal: PrincipalDep) -> None:
        """Members can no longer get "Save to Google Wallet" links."""
        await wallets_of(services).remove(principal.brand.id, GOOGLE)


class MemberWalletController(Controller):
    """A member's wallet card (secret key): the brand's app can hand it out."""

    path = "/v1/members"
    tags = ("wallet",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get(
        "/{external_id:str}/wallet/apple",
        summary="Get a member's Apple Wallet pass",
        responses=answers(200, bytes, "The signed .pkpass", media_type=PKPASS),
    )
    async def apple_pass(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Response[bytes]:
        """The member's signed ``.pkpass`` (404 when the brand has not configured Apple Wallet)."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
        wallets = wallets_of(services)
        status = await wallets.status(brand.id)
        board = status.apple.board if status.apple is not None else None
        issued = await wallets.apple_pass(brand, member.id, await card_state(services, brand, member, board=board))
        return pkpass_response(issued.data, issued.updated_s)

    @get("/{external_id:str}/wallet/google", summary="Get a member's Save to Google Wallet link")
    async def google_link(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> SaveLinkOut:
        """The signed link (404 when the brand has not configured Google Wallet)."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
        url = await wallets_of(services).google_save_url(brand, await card_state(services, brand, member))
        return SaveLinkOut(save_url=url)
