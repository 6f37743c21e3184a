"""Signed, expiring tokens: member portal links, portal sessions and widget member tokens.

A token is ``<payload>.<signature>``, both base64url without padding. The payload is compact JSON
``{"b": brand_id, "m": member external id, "e": expiry (unix seconds)}``; the signature is an HMAC-SHA256
of the payload under a key derived from ``settings.secret`` *and the token's purpose*, so a widget token
(exposed in a host page's HTML) can never open the portal, and a portal link can never be replayed as a
session cookie. Nothing is stored server-side: expiry is the only revocation, so lifetimes are short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec

from engine.errors import AuthenticationError
from engine.ids import BrandId


class Purpose(StrEnum):
    """What a token may be used for; each purpose signs with its own derived key."""

    PORTAL_LINK = "portal-link"
    """The link a brand sends a member (email, app); exchanged once for a portal session."""
    PORTAL_SESSION = "portal-session"
    """The portal's session cookie."""
    WIDGET_MEMBER = "widget-member"
    """Highlights the viewing member in a widget and reads their badge shelf (read only)."""


#: Bounds on lifetimes a caller may ask for.
MAX_LINK_LIFETIME = timedelta(days=30)
PORTAL_SESSION_LIFETIME = timedelta(hours=12)


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """Who a valid token speaks for."""

    b: int
    """The brand's id."""
    m: str
    """The member's external id."""
    e: int
    """Expiry, unix seconds (UTC)."""

    @property
    def brand_id(self) -> BrandId:
        """The brand the token belongs to."""
        return BrandId(self.b)

    @property
    def member(self) -> str:
        """The member's external id."""
        return self.m

    @property
    def expires_at(self) -> int:
        """Expiry, unix seconds."""
        return self.e


_decoder = msgspec.json.Decoder(TokenClaims)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: str, purpose: Purpose) -> bytes:
    return hmac.new(secret.encode(), f"questline:{purpose.value}".encode(), hashlib.sha256).digest()


def sign(*, secret: str, purpose: Purpose, brand_id: BrandId, member: str, expires_at: datetime) -> str:
    """A token for ``member`` of ``brand_id``, valid for ``purpose`` until ``expires_at``."""
    claims = TokenClaims(b=int(brand_id), m=member, e=int(expires_at.timestamp()))
    payload = _b64(msgspec.json.encode(claims))
    signature = _b64(hmac.new(_key(secret, purpose), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify(token: str, *, secret: str, purpose: Purpose, now: datetime) -> TokenClaims:
    """The claims of a valid, unexpired ``token`` of ``purpose``.

    Raises:
        AuthenticationError: malformed, forged, signed for another purpose, or expired.
    """
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or len(token) > 2048:
        raise AuthenticationError("this link is not valid", field="token")
    expected = hmac.new(_key(secret, purpose), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
    except ValueError as exc:
        raise AuthenticationError("this link is not valid", field="token") from exc
    if not hmac.compare_digest(given, expected):
        raise AuthenticationError("this link is not valid", field="token")
    # Only a payload we signed ourselves is ever decoded.
    claims = _decoder.decode(_unb64(payload))
    if claims.e <= int(now.timestamp()):
        raise AuthenticationError("this link has expired", field="token")
    return claims
