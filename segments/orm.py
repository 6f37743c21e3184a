"""Tables of segments and offers: definitions, an offer's budget counter, and each member's offer state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class SegmentRow(Base):
    """A brand's segment, stored in its validated plain form."""

    __tablename__ = "segments"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OfferRow(Base):
    """An offer; ``given`` is the points it has given, never above ``budget`` (a CHECK and a conditional UPDATE)."""

    __tablename__ = "offers"
    __table_args__ = (
        UniqueConstraint("brand_id", "key"),
        CheckConstraint("budget IS NULL OR given <= budget", name="within_budget"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    budget: Mapped[int | None] = mapped_column(BigId, nullable=True)
    given: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OfferMemberRow(Base):
    """A member's state on an offer: experiment arm, activation (opt-in), uses, points and qualifying events."""

    __tablename__ = "offer_members"
    __table_args__ = (Index("ix_offer_members_offer_arm", "offer_id", "arm"),)

    offer_id: Mapped[int] = mapped_column(ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    arm: Mapped[str] = mapped_column(String(32), default="")
    """The experiment arm (``""``: the offer runs without an experiment)."""
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(BigId, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    """Qualifying events since assignment (every arm, control included: the experiment's outcome)."""
