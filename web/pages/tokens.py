"""Signed, expiring tokens: member portal links, portal sessions and widget member tokens.

A token is ``<payload>.<signature>``: the payload is base64url compact JSON ``{"b": brand_id, "m": member
external id, "e": expiry (unix seconds), "n": nonce}``, signed by itsdangerous' ``Signer`` (HMAC-SHA256)
under a key derived from ``settings.secret`` *salted with the token's purpose*, so a widget token (exposed
in a host page's HTML) can never open the portal, and a portal link can never be replayed as a session
cookie. A portal link's nonce makes it single-use (:func:`web.pages.sessions.consume_link`); a portal
session's nonce names its server-side record, so signing out ends it on every device that copied the cookie.

The expiry travels inside the payload and is checked against the injected clock: itsdangerous'
``TimestampSigner`` would read the wall clock and take one ``max_age`` for every token, while links carry
the lifetime their caller asked for.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

import msgspec
from itsdangerous import BadSignature, Signer

from engine.errors import AuthenticationError
from engine.ids import BrandId


class Purpose(StrEnum):
    """What a token may be used for; each purpose signs with its own salt."""

    PORTAL_LINK = "portal-link"
    """The link a brand sends a member (email, app); exchanged once for a portal session."""
    PORTAL_SESSION = "portal-session"
    """The portal's session cookie."""
    WIDGET_MEMBER = "widget-member"
    """Highlights the viewing member in a widget and reads their badge shelf (read only)."""


#: Bounds on lifetimes a caller may ask for.
MAX_LINK_LIFETIME = timedelta(days=30)
PORTAL_SESSION_LIFETIME = timedelta(hours=12)
MAX_TOKEN_CHARS = 2048


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    """Who a valid token speaks for."""

    b: int
    """The brand's id."""
    m: str
    """The member's external id."""
    e: int
    """Expiry, unix seconds (UTC)."""
    n: str = ""
    """A random nonce: a link's single-use mark, a session's server-side id."""

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

    @property
    def nonce(self) -> str:
        """The token's random nonce."""
        return self.n


_decoder = msgspec.json.Decoder(TokenClaims)
#: Purposes whose tokens carry a nonce the server keeps track of.
_WITH_NONCE = {Purpose.PORTAL_LINK, Purpose.PORTAL_SESSION}


def new_nonce() -> str:
    """A fresh random nonce (128 bits)."""
    return secrets.token_urlsafe(16)


def _signer(secret: str, purpose: Purpose) -> Signer:
    return Signer(
        secret, salt=f"questline.{purpose.value}", key_derivation="hmac", digest_method=hashlib.sha256, sep="."
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(
    *,
    secret: str,
    purpose: Purpose,
    brand_id: BrandId,
    member: str,
    expires_at: datetime,
    nonce: str | None = None,
) -> str:
    """A token for ``member`` of ``brand_id``, valid for ``purpose`` until ``expires_at``.

    Links and sessions get a fresh random nonce unless one is given.
    """
    if nonce is None:
        nonce = new_nonce() if purpose in _WITH_NONCE else ""
    claims = TokenClaims(b=int(brand_id), m=member, e=int(expires_at.timestamp()), n=nonce)
    return _signer(secret, purpose).sign(_b64(msgspec.json.encode(claims))).decode()


def verify(token: str, *, secret: str, purpose: Purpose, now: datetime) -> TokenClaims:
    """The claims of a valid, unexpired ``token`` of ``purpose``.

    Raises:
        AuthenticationError: malformed, forged, signed for another purpose, or expired.
    """
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise AuthenticationError("this link is not valid", field="token")
    try:
        payload = _signer(secret, purpose).unsign(token)
        # Only a payload we signed ourselves is ever decoded.
        claims = _decoder.decode(_unb64(payload.decode()))
    except (BadSignature, binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise AuthenticationError("this link is not valid", field="token") from exc
    if claims.e <= int(now.timestamp()):
        raise AuthenticationError("this link has expired", field="token")
    return claims
