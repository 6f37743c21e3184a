"""Referral tables: one code per member, one referral per friend, hashed device and payment tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, UtcDateTime


class ReferralCodeRow(Base):
    """A member's referral code (unique in the brand)."""

    __tablename__ = "referral_codes"
    __table_args__ = (UniqueConstraint("brand_id", "code"), PrimaryKeyConstraint("brand_id", "member_id"))

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReferralRow(Base):
    """A friend who joined through a referrer's link: ``joined`` → ``paid`` | ``held`` → ``paid`` | ``rejected``.

    ``(brand_id, friend_id)`` is unique: a friend counts once, and a reward is paid by the one transition
    out of ``joined`` (or ``held``) that a conditional UPDATE wins.
    """

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("brand_id", "friend_id"),
        Index("ix_referrals_referrer", "brand_id", "referrer_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    friend_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    event_key: Mapped[str] = mapped_column(String(255), default="")
    """The friend's qualifying event."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    qualified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class FingerprintRow(Base):
    """A SHA-256 of a device id or payment token a member's events carried (self-referral guard)."""

    __tablename__ = "member_fingerprints"
    __table_args__ = (
        PrimaryKeyConstraint("brand_id", "member_id", "digest"),
        Index("ix_member_fingerprints_digest", "brand_id", "digest"),
    )

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
