"""Tables of rewards: the catalog, stock counters, code pools and redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class RewardRow(Base):
    """A catalog entry, stored in its validated plain form."""

    __tablename__ = "rewards"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RewardStockRow(Base):
    """How many of a reward are out; the CHECK keeps ``issued`` within ``total`` under concurrency."""

    __tablename__ = "reward_stock"
    __table_args__ = (
        CheckConstraint("issued >= 0", name="issued_nonnegative"),
        CheckConstraint("total IS NULL OR issued <= total", name="within_total"),
    )

    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    total: Mapped[int | None] = mapped_column(BigId, nullable=True)
    issued: Mapped[int] = mapped_column(BigId, default=0)


class RewardCodeRow(Base):
    """One code of a reward's pool: ``available``, ``issued`` (to a redemption) or ``void``."""

    __tablename__ = "reward_codes"
    __table_args__ = (
        UniqueConstraint("reward_id", "code"),
        Index("ix_reward_codes_free", "reward_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="available")
    generated: Mapped[bool] = mapped_column(default=False)
    redemption_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RedemptionRow(Base):
    """A member's redemption; ``(brand, member, idempotency_key)`` makes a retried request a no-op."""

    __tablename__ = "redemptions"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id", "idempotency_key"),
        Index("ix_redemptions_member_reward", "member_id", "reward_id", "issued_at"),
        Index("ix_redemptions_brand_time", "brand_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("rewards.id", ondelete="CASCADE"))
    reward_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    cost: Mapped[int] = mapped_column(BigId)
    code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="issued")
    idempotency_key: Mapped[str] = mapped_column(String(255))
    spend_entry_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    refund: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
