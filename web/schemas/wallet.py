"""Wallet pass payloads: the brand's settings come in as :mod:`wallet.models` structs; these are the answers."""

from __future__ import annotations

import msgspec


class SaveLinkOut(msgspec.Struct, frozen=True, kw_only=True):
    """A member's "Save to Google Wallet" link."""

    save_url: str
    """``https://pay.google.com/gp/v/save/<JWT>`` (RS256, signed with the brand's service-account key)."""


class PassKitLogIn(msgspec.Struct, frozen=True, kw_only=True):
    """What Wallet on a device reports to ``POST /v1/log``."""

    logs: list[str] = []


class RegistrationIn(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a device registration."""

    pushToken: str


class UpdatedPassesOut(msgspec.Struct, frozen=True, kw_only=True):
    """The serial numbers changed since the device's tag, and the new tag."""

    serialNumbers: list[str]
    lastUpdated: str
