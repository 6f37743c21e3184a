"""Wallet passes at run time: the brand's settings, issuing passes and links, and Apple's PassKit web service.

A pass "changes" exactly when the :class:`~wallet.models.CardState` it shows changes: its fingerprint is stored
with the pass, and every read of the member's state (a download, the device asking for updates, the refresh
job) compares and, on a difference, moves the pass's ``updated_s`` (the update tag and ``Last-Modified``) on
by at least a second. The refresh job pushes the devices of changed passes through a
:class:`~wallet.push.PassPusher`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import msgspec

from engine import tenants
from engine.errors import AuthenticationError, NotFound
from engine.ids import BrandId, MemberId
from wallet import google, images, pkpass, sealing
from wallet import repository as repo
from wallet.models import AppleSettings, CardState, GoogleSettings, PassIdentity, pass_json, readable_on

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.db import Database
    from engine.tenants import Brand
    from wallet.push import PassPusher

APPLE, GOOGLE = "apple", "google"
_ACCENT = re.compile(r"^#[0-9a-fA-F]{6}$")


class CardReader(Protocol):
    """Reads a member's card (points, tier, rank, challenges) from the other domains; ``None``: no such member."""

    async def __call__(self, brand: Brand, member_id: MemberId) -> CardState | None:
        """The member's card as of now."""
        ...


class AppleStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The brand's Apple settings as answered (no private key)."""

    pass_type_identifier: str
    team_identifier: str
    organization_name: str
    barcode: str
    background_color: str | None
    foreground_color: str | None
    board: str | None
    apns_sandbox: bool
    certificate_subject: str
    certificate_expires_at: datetime
    updated_at: datetime


class GoogleStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The brand's Google settings as answered (no private key)."""

    issuer_id: str
    service_account_email: str
    program_name: str
    barcode: str
    background_color: str | None
    logo_url: str | None
    origins: list[str]
    updated_at: datetime


class WalletStatus(msgspec.Struct, frozen=True, kw_only=True):
    """Which wallets the brand configured."""

    apple: AppleStatus | None
    google: GoogleStatus | None


@dataclass(frozen=True, slots=True)
class IssuedPass:
    """A signed ``.pkpass`` and when it last changed (Unix seconds)."""

    data: bytes
    serial_number: str
    updated_s: int


@dataclass(frozen=True, slots=True)
class Wallets:
    """What the wallet services need: the database, the deployment's secret, the web service URL, a clock, a pusher."""

    db: Database
    secret: str
    web_service_url: str | None
    clock: Clock
    pusher: PassPusher

    # --- the brand's settings -------------------------------------------------------------------------

    async def configure_apple(self, brand_id: BrandId, settings: AppleSettings) -> tuple[AppleStatus, bool]:
        """Check the certificate chain and key, seal the key, store the settings; whether they are new."""
        now = self.clock.now()
        pkpass.load_identity(settings.certificate_pem, settings.private_key_pem, settings.wwdr_pem, now=now)
        plain = msgspec.to_builtins(settings)
        key = plain.pop("private_key_pem")
        sealed = sealing.seal(key, secret=self.secret, brand_id=brand_id)
        async with self.db.write() as session:
            created = await repo.save_config(
                session, brand_id=brand_id, kind=APPLE, settings=plain, sealed_key=sealed, now=now
            )
        status = await self.status(brand_id)
        assert status.apple is not None
        return status.apple, created

    async def configure_google(self, brand_id: BrandId, settings: GoogleSettings) -> tuple[GoogleStatus, bool]:
        """Check the service account's key, seal it, store the settings; whether they are new."""
        google.load_key(settings.private_key_pem)
        plain = msgspec.to_builtins(settings)
        key = plain.pop("private_key_pem")
        sealed = sealing.seal(key, secret=self.secret, brand_id=brand_id)
        async with self.db.write() as session:
            created = await repo.save_config(
                session, brand_id=brand_id, kind=GOOGLE, settings=plain, sealed_key=sealed, now=self.clock.now()
            )
        status = await self.status(brand_id)
        assert status.google is not None
        return status.google, created

    async def status(self, brand_id: BrandId) -> WalletStatus:
        """The brand's wallet settings without their keys."""
        async with self.db.read() as session:
            apple = await repo.load_config(session, brand_id=brand_id, kind=APPLE)
            google_config = await repo.load_config(session, brand_id=brand_id, kind=GOOGLE)
        return WalletStatus(
            apple=None if apple is None else _apple_status(apple),
            google=None if google_config is None else _google_status(google_config),
        )

    async def remove(self, brand_id: BrandId, kind: str) -> None:
        """Forget the brand's ``apple`` or ``google`` settings.

        Raises:
            NotFound: the brand has none.
        """
        async with self.db.write() as session:
            if not await repo.delete_config(session, brand_id=brand_id, kind=kind):
                raise NotFound(f"the brand has no {kind} wallet settings")

    async def apple_config(self, brand_id: int) -> tuple[AppleSettings, pkpass.SigningIdentity, str]:
        """The brand's Apple settings, signing identity and (unsealed) private key.

        Raises:
            NotFound: the brand has not configured Apple Wallet.
            Conflict: the sealed key does not open (the secret was rotated).
            ValidationError: the stored certificate is no longer valid.
        """
        async with self.db.read() as session:
            stored = await repo.load_config(session, brand_id=brand_id, kind=APPLE)
        if stored is None:
            raise NotFound("the brand has not configured Apple Wallet")
        key = sealing.unseal(stored.sealed_key, secret=self.secret, brand_id=brand_id)
        settings = msgspec.convert({**stored.settings, "private_key_pem": key}, AppleSettings)
        identity = pkpass.load_identity(settings.certificate_pem, key, settings.wwdr_pem, now=self.clock.now())
        return settings, identity, key

    async def _google(self, brand_id: int) -> GoogleSettings:
        async with self.db.read() as session:
            stored = await repo.load_config(session, brand_id=brand_id, kind=GOOGLE)
        if stored is None:
            raise NotFound("the brand has not configured Google Wallet")
        key = sealing.unseal(stored.sealed_key, secret=self.secret, brand_id=brand_id)
        return msgspec.convert({**stored.settings, "private_key_pem": key}, GoogleSettings)

    # --- issuing ---------------------------------------------------------------------------------------

    def authentication_token(self, serial_number: str) -> str:
        """The pass's ``authenticationToken``: an HMAC of its serial under the deployment's secret (32 characters)."""
        digest = hmac.new(self.secret.encode(), f"wallet-pass:{serial_number}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()

    async def apple_pass(self, brand: Brand, member_id: MemberId, state: CardState) -> IssuedPass:
        """The member's signed ``.pkpass`` showing ``state`` (the pass row is made on the first download).

        Raises:
            NotFound: the brand has not configured Apple Wallet.
        """
        settings, identity, _ = await self.apple_config(brand.id)
        now = self.clock.now()
        fingerprint = state.fingerprint()
        async with self.db.write() as session:
            ref = await repo.ensure_pass(
                session, brand_id=brand.id, member_id=member_id, fingerprint=fingerprint, now=now
            )
            ref = await repo.record_fingerprint(session, ref, fingerprint=fingerprint, now_s=int(now.timestamp()))
        return self._build(brand, settings, identity, ref, state)

    def _build(
        self,
        brand: Brand,
        settings: AppleSettings,
        identity: pkpass.SigningIdentity,
        ref: repo.PassRef,
        state: CardState,
    ) -> IssuedPass:
        accent = _accent(brand)
        pass_identity = PassIdentity(
            serial_number=ref.serial_number,
            authentication_token=self.authentication_token(ref.serial_number),
            web_service_url=self.web_service_url,
        )
        document = pass_json(state, settings=settings, identity=pass_identity, brand_name=brand.name, accent=accent)
        colour = settings.background_color or accent or "#1f2937"
        art = images.card_images(brand.name, colour=colour, ink=settings.foreground_color or readable_on(colour))
        return IssuedPass(
            data=pkpass.pack(document, art, identity), serial_number=ref.serial_number, updated_s=ref.updated_s
        )

    async def google_save_url(self, brand: Brand, state: CardState) -> str:
        """The member's "Save to Google Wallet" link (a JWT signed with the brand's service-account key).

        Raises:
            NotFound: the brand has not configured Google Wallet.
        """
        settings = await self._google(brand.id)
        key = google.load_key(settings.private_key_pem)
        token = google.save_jwt(
            settings,
            key,
            loyalty_class=google.loyalty_class(
                settings, brand_slug=brand.slug, brand_name=brand.name, accent=_accent(brand)
            ),
            loyalty_object=google.loyalty_object(settings, state, brand_slug=brand.slug),
            now=self.clock.now(),
        )
        return google.save_url(token)

    async def configured(self, brand_id: BrandId) -> tuple[bool, bool]:
        """Whether the brand configured Apple and Google Wallet."""
        status = await self.status(brand_id)
        return status.apple is not None, status.google is not None


def _accent(brand: Brand) -> str | None:
    value = brand.settings.get("accent")
    return value if isinstance(value, str) and _ACCENT.match(value) else None


def _apple_status(stored: repo.StoredConfig) -> AppleStatus:
    from cryptography import x509

    s = stored.settings
    certificate = x509.load_pem_x509_certificate(str(s["certificate_pem"]).encode())
    return AppleStatus(
        pass_type_identifier=s["pass_type_identifier"],
        team_identifier=s["team_identifier"],
        organization_name=s["organization_name"],
        barcode=s.get("barcode", "qr"),
        background_color=s.get("background_color"),
        foreground_color=s.get("foreground_color"),
        board=s.get("board"),
        apns_sandbox=bool(s.get("apns_sandbox", False)),
        certificate_subject=certificate.subject.rfc4514_string(),
        certificate_expires_at=certificate.not_valid_after_utc,
        updated_at=stored.updated_at,
    )


def _google_status(stored: repo.StoredConfig) -> GoogleStatus:
    s = stored.settings
    return GoogleStatus(
        issuer_id=s["issuer_id"],
        service_account_email=s["service_account_email"],
        program_name=s["program_name"],
        barcode=s.get("barcode", "qr"),
        background_color=s.get("background_color"),
        logo_url=s.get("logo_url"),
        origins=list(s.get("origins", [])),
        updated_at=stored.updated_at,
    )


async def load_brand(db: Database, brand_id: int) -> Brand:
    """The brand of a pass."""
    async with db.read() as session:
        return await tenants.get_brand_by_id(session, BrandId(brand_id))


def credentials_error() -> AuthenticationError:
    """What a wrong or missing ``ApplePass`` token answers (401, whether or not the serial exists)."""
    return AuthenticationError("send the pass's token as `Authorization: ApplePass <authenticationToken>`")
