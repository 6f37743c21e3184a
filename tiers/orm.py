"""Tables of tiers: the brand's program, per-member metric counters, current tiers, history, one-off bonuses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class TierProgramRow(Base):
    """A brand's tier program (qualification and ordered tiers), stored in its validated plain form."""

    __tablename__ = "tier_programs"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TierCounterRow(Base):
    """A member's metric for one local day: incremented once per member per unit of work."""

    __tablename__ = "tier_counters"
    __table_args__ = (Index("ix_tier_counters_brand_metric_day", "brand_id", "metric", "day"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    value: Mapped[float] = mapped_column(Float, default=0.0)


class MemberTierRow(Base):
    """A member's current tier; ``version`` grows with every change (history rows are unique per version)."""

    __tablename__ = "member_tiers"
    __table_args__ = (Index("ix_member_tiers_brand_review", "brand_id", "review_at"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    review_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    keep_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    override_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    override_reason: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16), default="qualified")
    version: Mapped[int] = mapped_column(Integer, default=1)


class TierHistoryRow(Base):
    """One change of a member's tier; ``(member_id, version)`` makes each change happen exactly once."""

    __tablename__ = "tier_history"
    __table_args__ = (
        UniqueConstraint("member_id", "version"),
        Index("ix_tier_history_brand_at", "brand_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous: Mapped[str | None] = mapped_column(String(64), nullable=True)
    change: Mapped[str] = mapped_column(String(16))
    """``upgraded``, ``downgraded``, ``renewed``, ``override``, ``migrated``."""
    reason: Mapped[str] = mapped_column(String(500), default="")
    event_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class TierBonusRow(Base):
    """A once-only benefit taken: a birthday bonus (``birthday``, year) or a chosen reward (``choice``, tier)."""

    __tablename__ = "tier_bonuses"

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)
