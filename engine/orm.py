"""Engine-owned tables: brands, API keys, members, the event log, the points ledger, the outbox, webhooks.

Every row carries its brand (tenants are sealed). Only ``orm.py`` and repository modules see these
classes; the rest of the code works with msgspec structs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class BrandRow(Base):
    """A brand (tenant) running a loyalty program."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    config_version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every definition change so each worker's rule cache knows to reload."""
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    """A hashed API key: ``sk_`` secret (server-to-server) or ``pk_`` publishable (read-only widgets)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class MemberRow(Base):
    """A member of a brand's program, known by the brand's external id."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("brand_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(16), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EventRow(Base):
    """The append-only event log; ``(brand_id, event_key)`` is the idempotency key."""

    __tablename__ = "event_log"
    __table_args__ = (
        UniqueConstraint("brand_id", "event_key"),
        Index("ix_event_log_member_time", "brand_id", "member_id", "occurred_at"),
        Index("ix_event_log_brand_time", "brand_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(255))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    result: Mapped[bytes] = mapped_column(LargeBinary, default=b"[]")
    """The effects the event caused when first processed (msgspec JSON); a duplicate answers with these.

    Stored as opaque bytes rather than JSONB: nothing queries it, and the database need not parse it."""


class LedgerRow(Base):
    """One append-only points entry; a balance is the sum of a member's entries."""

    __tablename__ = "ledger"
    __table_args__ = (
        Index("ix_ledger_member", "brand_id", "member_id", "id"),
        Index("ix_ledger_cap", "brand_id", "member_id", "key", "local_day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    event_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    points: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    local_day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EarningRuleRow(Base):
    """A brand's earning rule, stored in its validated plain form."""

    __tablename__ = "earning_rules"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OutboxRow(Base):
    """A notification to deliver after commit (webhooks); written in the event's transaction."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered_to: Mapped[list[int]] = mapped_column(Json, default=list)
    """Endpoints this message already reached: a retry goes only to the others."""


class WebhookEndpointRow(Base):
    """Where a brand wants its notifications, with the ``whsec_`` secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    topics: Mapped[list[str]] = mapped_column(Json, default=list)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_reason: Mapped[str] = mapped_column(Text, default="")


class AdminUserRow(Base):
    """A person who signs in to a brand's admin console (password stored as a scrypt hash)."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
