"""Tables of integrations: per-brand source settings, pending retractions, idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class SourceRow(Base):
    """A brand's settings for one platform (its webhook secret is stored to verify signatures)."""

    __tablename__ = "integration_sources"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(255))
    shop_domain: Mapped[str] = mapped_column(String(255), default="")
    member_key: Mapped[str] = mapped_column(String(32), default="email")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SourceMappingRow(Base):
    """The ``sources:`` section of a brand's program document (event-name mappings)."""

    __tablename__ = "integration_mappings"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PendingRetractionRow(Base):
    """A refund received, waiting for the retraction processor (one per source request, exactly once)."""

    __tablename__ = "pending_retractions"
    __table_args__ = (UniqueConstraint("brand_id", "request_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    event_key: Mapped[str] = mapped_column(String(255))
    """What the refund references: a Questline event id (``by = 'event_id'``) or an order id (``'order_id'``)."""
    by: Mapped[str] = mapped_column(String(16), default="event_id")
    member: Mapped[str] = mapped_column(String(255), default="")
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The refunded amount; ``NULL`` retracts the whole event."""
    source: Mapped[str] = mapped_column(String(32))
    request_key: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdempotencyRow(Base):
    """The first request made with an ``Idempotency-Key``, and its response once it finished."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_expires_at", "expires_at"),)

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    method: Mapped[str] = mapped_column(String(8), primary_key=True)
    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="in_flight")
    response_status: Mapped[int | None] = mapped_column(nullable=True)
    response_headers: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
