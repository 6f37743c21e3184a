"""What a wallet card shows, the brand's wallet configuration, and the pass's ``pass.json`` (pure)."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

import msgspec

HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
#: Apple's pass type identifiers look like ``pass.com.example.loyalty``.
PASS_TYPE_ID = r"^pass\.[A-Za-z0-9][A-Za-z0-9.\-]{0,120}$"
TEAM_ID = r"^[A-Z0-9]{10}$"
BARCODE_FORMATS = {"qr": "PKBarcodeFormatQR", "code128": "PKBarcodeFormatCode128"}
GOOGLE_BARCODES = {"qr": "QR_CODE", "code128": "CODE_128"}


class ChallengeLine(msgspec.Struct, frozen=True, kw_only=True):
    """One open challenge's progress as a card shows it."""

    key: str
    title: str
    value: float
    target: float
    unit: str = ""

    @property
    def text(self) -> str:
        """``value / target unit``, with integral numbers shown without decimals."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{_number(self.value)} / {_number(self.target)}{unit}"


class CardLabels(msgspec.Struct, frozen=True, kw_only=True):
    """The card's field labels and change messages, already in the member's language (``%@`` = new value)."""

    points: str = "Points"
    tier: str = "Tier"
    rank: str = "Rank"
    challenge: str = "Challenge"
    member: str = "Member"
    challenges: str = "Challenges in progress"
    points_changed: str = "Your balance is now %@"
    rank_changed: str = "Your rank is now %@"
    tier_changed: str = "Your tier is now %@"
    description: str = "Loyalty card"


class CardState(msgspec.Struct, frozen=True, kw_only=True):
    """A member's card: everything that, when it changes, makes the pass change."""

    member_code: str
    """What the till scans (the member's id at the brand)."""
    name: str
    points: int
    tier: str | None = None
    rank: int | None = None
    rank_of: int | None = None
    board: str | None = None
    challenges: tuple[ChallengeLine, ...] = ()
    labels: CardLabels = CardLabels()

    @property
    def rank_text(self) -> str | None:
        """``#3 / 120`` (or ``None`` without a rank)."""
        if self.rank is None:
            return None
        return f"#{self.rank}" if self.rank_of is None else f"#{self.rank} / {self.rank_of}"

    def fingerprint(self) -> str:
        """A digest of everything the card shows: a pass changed exactly when this changed."""
        return hashlib.sha256(msgspec.json.encode(self)).hexdigest()


class AppleSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The brand's Apple Wallet settings, as the API takes them (PEM texts; the key is sealed at rest)."""

    pass_type_identifier: Annotated[str, msgspec.Meta(pattern=PASS_TYPE_ID)]
    team_identifier: Annotated[str, msgspec.Meta(pattern=TEAM_ID)]
    organization_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    certificate_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    """The Pass Type ID certificate (PEM)."""
    private_key_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    """Its private key (PEM, unencrypted PKCS#8 or traditional); never answered back."""
    wwdr_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    """Apple's WWDR intermediate certificate (PEM) that issued the pass certificate."""
    barcode: Annotated[str, msgspec.Meta(pattern=r"^(qr|code128)$")] = "qr"
    background_color: Annotated[str, msgspec.Meta(pattern=HEX_COLOUR)] | None = None
    foreground_color: Annotated[str, msgspec.Meta(pattern=HEX_COLOUR)] | None = None
    board: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    """The board whose rank the card shows (default: the brand's first active board)."""
    apns_sandbox: bool = False
    """Push to Apple's development APNs server (passes signed with a development certificate)."""


class GoogleSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The brand's Google Wallet settings (the service account's key is sealed at rest)."""

    issuer_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{5,25}$")]
    service_account_email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$", max_length=255)]
    private_key_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
    """The service account's RSA private key (``private_key`` of its JSON key file); never answered back."""
    program_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    barcode: Annotated[str, msgspec.Meta(pattern=r"^(qr|code128)$")] = "qr"
    background_color: Annotated[str, msgspec.Meta(pattern=HEX_COLOUR)] | None = None
    logo_url: Annotated[str, msgspec.Meta(pattern=r"^https://\S+$", max_length=500)] | None = None
    origins: list[Annotated[str, msgspec.Meta(pattern=r"^https?://[^/\s]+$")]] = []
    """Origins of pages that show the "Save to Google Wallet" button (the JWT's ``origins``)."""


class PassIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """Where a pass lives: its serial, the token the device authenticates with, and the web service."""

    serial_number: str
    authentication_token: str
    web_service_url: str | None


def rgb(colour: str) -> str:
    """``#rrggbb`` as Apple's ``rgb(r, g, b)``."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def readable_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (WCAG relative luminance)."""

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(background[i : i + 2], 16)) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if luminance > 0.179 else "#ffffff"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _field(key: str, label: str, value: object, change: str | None = None) -> dict[str, object]:
    field: dict[str, object] = {"key": key, "label": label, "value": value}
    if change:
        field["changeMessage"] = change
    return field


def pass_json(
    state: CardState, *, settings: AppleSettings, identity: PassIdentity, brand_name: str, accent: str | None
) -> dict[str, object]:
    """The ``pass.json`` of a ``storeCard`` membership pass (Wallet Passes, format version 1)."""
    background = settings.background_color or accent or "#1f2937"
    foreground = settings.foreground_color or readable_on(background)
    labels = state.labels
    secondary: list[dict[str, object]] = []
    if state.tier:
        secondary.append(_field("tier", labels.tier, state.tier, labels.tier_changed))
    if state.rank_text:
        secondary.append(_field("rank", state.board or labels.rank, state.rank_text, labels.rank_changed))
    auxiliary: list[dict[str, object]] = []
    if state.challenges:
        first = state.challenges[0]
        auxiliary.append(_field("challenge", first.title, first.text))
    back = [_field(f"challenge-{c.key}", c.title, c.text) for c in state.challenges]
    barcode = {
        "format": BARCODE_FORMATS[settings.barcode],
        "message": state.member_code,
        "messageEncoding": "iso-8859-1",
        "altText": state.member_code,
    }
    document: dict[str, object] = {
        "formatVersion": 1,
        "passTypeIdentifier": settings.pass_type_identifier,
        "serialNumber": identity.serial_number,
        "teamIdentifier": settings.team_identifier,
        "organizationName": settings.organization_name,
        "description": labels.description,
        "logoText": brand_name,
        "backgroundColor": rgb(background),
        "foregroundColor": rgb(foreground),
        "labelColor": rgb(foreground),
        "barcodes": [barcode],
        "storeCard": {
            "headerFields": [_field("points", labels.points, state.points, labels.points_changed)],
            "primaryFields": [_field("member", labels.member, state.name)],
            "secondaryFields": secondary,
            "auxiliaryFields": auxiliary,
            "backFields": back or [_field("challenges", labels.challenges, "–")],
        },
    }
    if identity.web_service_url:
        document["webServiceURL"] = identity.web_service_url
        document["authenticationToken"] = identity.authentication_token
    return document


#: The shape of a serial number this server issues (random, URL-safe).
SERIAL = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")
