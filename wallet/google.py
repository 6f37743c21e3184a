"""Google Wallet: the brand's ``loyaltyClass``, a member's ``loyaltyObject``, and the "Save to Google Wallet" link.

The link is ``https://pay.google.com/gp/v/save/<JWT>``: an RS256 JWT signed with the issuer's service-account
key, ``iss`` = the service account's email, ``aud`` = ``google``, ``typ`` = ``savetowallet``, the class and the
object in ``payload``. The object shows points (``loyaltyPoints``), the tier and the rank (``secondaryLoyaltyPoints``
and text modules) and each open challenge's progress.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.errors import ValidationError
from wallet.models import GOOGLE_BARCODES, CardState, GoogleSettings

if TYPE_CHECKING:
    from datetime import datetime

SAVE_URL = "https://pay.google.com/gp/v/save/"


def load_key(private_key_pem: str) -> rsa.RSAPrivateKey:
    """The service account's RSA key.

    Raises:
        ValidationError: not an unencrypted PEM RSA key.
    """
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError("the private key is not an unencrypted PEM key", field="$.private_key_pem") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValidationError("a Google service-account key is an RSA key", field="$.private_key_pem")
    return key


def _suffix(text: str) -> str:
    """An id suffix Google accepts (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._\-]", "_", text)[:100]


def class_id(settings: GoogleSettings, brand_slug: str) -> str:
    """``<issuer>.<brand>-loyalty``."""
    return f"{settings.issuer_id}.{_suffix(brand_slug)}-loyalty"


def object_id(settings: GoogleSettings, brand_slug: str, member_code: str) -> str:
    """``<issuer>.<brand>-<member>``."""
    return f"{settings.issuer_id}.{_suffix(brand_slug)}-{_suffix(member_code)}"


def loyalty_class(
    settings: GoogleSettings, *, brand_slug: str, brand_name: str, accent: str | None
) -> dict[str, object]:
    """The brand's ``loyaltyClass``."""
    document: dict[str, object] = {
        "id": class_id(settings, brand_slug),
        "issuerName": brand_name,
        "programName": settings.program_name,
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": settings.background_color or accent or "#1f2937",
    }
    if settings.logo_url:
        document["programLogo"] = {"sourceUri": {"uri": settings.logo_url}}
    return document


def loyalty_object(settings: GoogleSettings, state: CardState, *, brand_slug: str) -> dict[str, object]:
    """A member's ``loyaltyObject``: points, tier, rank and challenge progress."""
    labels = state.labels
    document: dict[str, object] = {
        "id": object_id(settings, brand_slug, state.member_code),
        "classId": class_id(settings, brand_slug),
        "state": "ACTIVE",
        "accountId": state.member_code,
        "accountName": state.name,
        "loyaltyPoints": {"label": labels.points, "balance": {"int": state.points}},
        "barcode": {
            "type": GOOGLE_BARCODES[settings.barcode],
            "value": state.member_code,
            "alternateText": state.member_code,
        },
    }
    if state.rank is not None:
        document["secondaryLoyaltyPoints"] = {
            "label": state.board or labels.rank,
            "balance": {"string": state.rank_text},
        }
    modules: list[dict[str, str]] = []
    if state.tier:
        modules.append({"id": "tier", "header": labels.tier, "body": state.tier})
    modules.extend({"id": f"challenge-{_suffix(c.key)}", "header": c.title, "body": c.text} for c in state.challenges)
    if modules:
        document["textModulesData"] = modules
    return document


def save_jwt(
    settings: GoogleSettings,
    key: rsa.RSAPrivateKey,
    *,
    loyalty_class: dict[str, object],
    loyalty_object: dict[str, object],
    now: datetime,
) -> str:
    """The signed "Save to Google Wallet" JWT carrying the class and the object."""
    claims: dict[str, object] = {
        "iss": settings.service_account_email,
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(now.timestamp()),
        "payload": {"loyaltyClasses": [loyalty_class], "loyaltyObjects": [loyalty_object]},
    }
    if settings.origins:
        claims["origins"] = list(settings.origins)
    return jwt.encode(claims, key, algorithm="RS256")


def save_url(token: str) -> str:
    """The "Save to Google Wallet" link of a JWT."""
    return SAVE_URL + token
