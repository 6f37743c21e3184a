"""Tables of wallet passes: the brand's wallet settings, each member's Apple pass, devices registered for updates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class WalletConfigRow(Base):
    """A brand's Apple (``apple``) or Google (``google``) settings; the private key is sealed (wallet.sealing)."""

    __tablename__ = "wallet_configs"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(Json)
    """Everything but the private key (certificates are public)."""
    sealed_key: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WalletPassRow(Base):
    """A member's Apple pass: its serial and the fingerprint of what it last showed, changed at ``updated_s``."""

    __tablename__ = "wallet_passes"
    __table_args__ = (UniqueConstraint("brand_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    serial_number: Mapped[str] = mapped_column(String(64), unique=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    updated_s: Mapped[int] = mapped_column(BigInteger)
    """Unix seconds of the last change: the update tag and ``Last-Modified``; grows by at least 1 per change."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WalletRegistrationRow(Base):
    """A device registered for a pass's updates, with the push token APNs reaches it by."""

    __tablename__ = "wallet_registrations"
    __table_args__ = (Index("ix_wallet_registrations_device", "device_library_identifier", "pass_type_identifier"),)

    device_library_identifier: Mapped[str] = mapped_column(String(128), primary_key=True)
    pass_id: Mapped[int] = mapped_column(ForeignKey("wallet_passes.id", ondelete="CASCADE"), primary_key=True)
    pass_type_identifier: Mapped[str] = mapped_column(String(128))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    push_token: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
