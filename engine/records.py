"""Tables of the hardening features: the brand-side audit log and events held by velocity limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class AuditRow(Base):
    """One brand-side change: who made it, when, and a short summary of what changed."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_brand", "brand_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    """``key:sk_live_ab12…`` (a key prefix) or ``admin:someone@example.com``."""
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class HeldEventRow(Base):
    """An event a velocity limit held for review, with its payload; applied once when approved."""

    __tablename__ = "held_events"
    __table_args__ = (
        UniqueConstraint("brand_id", "event_key"),
        Index("ix_held_events_queue", "brand_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """The event as sent (``id``, ``member``, ``type``, ``occurred_at``, ``properties``)."""
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending_review``, ``approved`` or ``rejected``."""
    held_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(200), default="")
