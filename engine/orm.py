"""Engine-owned tables: brands, API keys, members, the event log, the points ledger, the outbox, webhooks.

Every row carries its brand (tenants are sealed). Only ``orm.py`` and repository modules see these
classes; the rest of the code works with msgspec structs.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
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
    __table_args__ = (
        UniqueConstraint("brand_id", "external_id"),
        Index("uq_members_brand_email", "brand_id", "email", unique=True),
        UniqueConstraint("brand_id", "id"),  # what the event log, ledger and balances reference (0014_member_keys)
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    locale: Mapped[str] = mapped_column(String(16), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True, default=None)
    """Normalised (trimmed, lower case), unique per brand; set by self-enrolment (``enrollment``)."""
    joined_via: Mapped[str] = mapped_column(String(100), default="", server_default="")
    """Where a self-enrolled member joined: ``web``, ``widget``, ``qr:<source>``, ``referral``."""
    tier: Mapped[str | None] = mapped_column(String(64), nullable=True, default=None)
    """The computed tier (kept by the tiers domain; migration ``0008_tiers``); NULL: none computed, "": no tier."""


def _member_key() -> ForeignKeyConstraint:
    """A row's member, of the row's brand: one key (one check per row written) where two were (``0014_member_keys``).

    A brand's deletion reaches the rows through its members (their own key onto ``brands``), not directly.
    """
    return ForeignKeyConstraint(["brand_id", "member_id"], ["members.brand_id", "members.id"], ondelete="CASCADE")


class EventRow(Base):
    """The append-only event log; ``(brand_id, event_key)`` is the idempotency key."""

    __tablename__ = "event_log"
    __table_args__ = (
        UniqueConstraint("brand_id", "event_key"),
        Index("ix_event_log_member_time", "brand_id", "member_id", "occurred_at"),
        Index("ix_event_log_brand_time", "brand_id", "occurred_at"),
        _member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(BigId)
    event_key: Mapped[str] = mapped_column(String(255))
    member_id: Mapped[int] = mapped_column(BigId)
    type: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    result: Mapped[bytes] = mapped_column(LargeBinary, default=b"[]")
    """The effects the event caused when first processed (msgspec JSON); a duplicate answers with these.

    Stored as opaque bytes rather than JSONB: nothing queries it, and the database need not parse it."""
    retracted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, default=None)
    """When the event was retracted whole (:mod:`engine.retraction`); replays and board rebuilds skip it."""
    refunded: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """How much of its ``amount`` property partial retractions refunded (replays see the rest)."""


class EventRetractionRow(Base):
    """A request to undo (part of) an event: ``pending`` until the event is known, then ``applied`` once."""

    __tablename__ = "event_retractions"
    __table_args__ = (
        UniqueConstraint("brand_id", "request_key"),
        Index("ix_event_retractions_event", "brand_id", "event_key"),
        Index("ix_event_retractions_status", "status", "brand_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    request_key: Mapped[str] = mapped_column(String(255))
    """Exactly once per request: ``api:<event id>`` for a whole retraction by API, the source's refund id otherwise."""
    event_key: Mapped[str] = mapped_column(String(255))
    """What the request references: an event id (``by = 'event_id'``) or an order id (``'order_id'``)."""
    by: Mapped[str] = mapped_column(String(16), default="event_id")
    member: Mapped[str] = mapped_column(String(255), default="")
    amount: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The refunded amount; ``NULL`` retracts the whole event."""
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    applied_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    applied_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    """The event id it was applied to."""
    outcome: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """What was undone (points, unrecovered points, challenges, badges, boards, tier)."""


_LOT = text("kind = 'earn'")
_HELD = text("kind = 'earn' AND available_at > created_at")
_DATED = text("kind = 'earn' AND expires_at IS NOT NULL")
_ON_LOT = text("lot_id IS NOT NULL")
_BY_EVENT = text("event_key IS NOT NULL")


class LedgerRow(Base):
    """One append-only points entry; ``points`` is the signed change to the member's available + pending total.

    An ``earn`` entry is a **lot**: pending until ``available_at`` (held when that is later than its
    ``created_at``), then spendable until ``expires_at``. ``spend`` entries consume lots through
    :class:`LedgerAllocationRow`; ``expire``, ``cancel`` and ``release`` entries act on one lot
    (``lot_id``), at most once per lot and kind (a unique index). See docs/rewards.md.
    """

    __tablename__ = "ledger"
    __table_args__ = (
        Index("ix_ledger_member", "brand_id", "member_id", "id"),
        Index("ix_ledger_cap", "brand_id", "member_id", "key", "local_day"),
        Index("ix_ledger_lots", "brand_id", "member_id", "id", postgresql_where=_LOT, sqlite_where=_LOT),
        Index("ix_ledger_held", "available_at", postgresql_where=_HELD, sqlite_where=_HELD),
        Index("ix_ledger_dated", "expires_at", postgresql_where=_DATED, sqlite_where=_DATED),
        Index("uq_ledger_lot_kind", "lot_id", "kind", unique=True, postgresql_where=_ON_LOT, sqlite_where=_ON_LOT),
        Index("ix_ledger_event", "brand_id", "event_key", postgresql_where=_BY_EVENT, sqlite_where=_BY_EVENT),
        _member_key(),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(BigId)
    member_id: Mapped[int] = mapped_column(BigId)
    event_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    points: Mapped[int] = mapped_column(BigId)
    source: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    local_day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(8), default="earn", server_default="earn")
    """``earn`` (a lot), ``spend``, ``expire``, ``cancel`` or ``release``."""
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("ledger.id"), nullable=True)
    """The lot an ``expire``, ``cancel`` or ``release`` entry acts on."""
    available_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Lots only: when the points become spendable (later than ``created_at`` for a held lot)."""
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Lots only: when what is left of the lot expires (``None``: never, or by inactivity)."""


class LedgerAllocationRow(Base):
    """Append-only: how much of a lot a consuming entry (spend, expire, cancel) took.

    A lot's remaining amount is its points minus the sum of its allocations (indexed by lot).
    """

    __tablename__ = "ledger_allocations"
    __table_args__ = (
        UniqueConstraint("entry_id", "lot_id", name="uq_ledger_allocations_entry_id"),  # as migration 0006 named it
        Index("ix_ledger_allocations_lot", "lot_id", "points"),
        CheckConstraint("points > 0", name="points_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger.id"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("ledger.id"))
    points: Mapped[int] = mapped_column(BigId)


class PointBalanceRow(Base):
    """A member's balance, updated in the same transaction as every ledger write; the CHECKs forbid overdraft."""

    __tablename__ = "point_balances"
    __table_args__ = (
        CheckConstraint("available >= 0", name="available_nonnegative"),
        CheckConstraint("pending >= 0", name="pending_nonnegative"),
        Index("ix_point_balances_activity", "brand_id", "last_activity_at"),
        _member_key(),
    )

    member_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(BigId)
    available: Mapped[int] = mapped_column(BigId, default=0)
    pending: Mapped[int] = mapped_column(BigId, default=0)
    lifetime_earned: Mapped[int] = mapped_column(BigId, default=0)
    lifetime_spent: Mapped[int] = mapped_column(BigId, default=0)
    last_activity_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The last earn or spend (the clock of an inactivity expiry policy)."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ExpiryNoticeRow(Base):
    """A ``points.expiring`` notice already sent for a lot at a threshold (so each goes out once)."""

    __tablename__ = "point_expiry_notices"
    __table_args__ = (PrimaryKeyConstraint("lot_id", "days_before"),)

    lot_id: Mapped[int] = mapped_column(ForeignKey("ledger.id"))
    days_before: Mapped[int] = mapped_column(Integer)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
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
    __table_args__ = (
        Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),
        Index("ix_outbox_throttle", "brand_id", "throttle_key", "created_at"),
    )

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
    throttle_key: Mapped[str | None] = mapped_column(String(300), nullable=True, default=None)
    """Set on throttled topics (``rank.changed``): one message per key and interval (:mod:`engine.publishing`)."""


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
    previous_secret: Mapped[str] = mapped_column(String(100), default="")
    """The secret before the last rotation: messages are signed with both until ``previous_secret_until``."""
    previous_secret_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, default=None)


class WebhookDeliveryRow(Base):
    """One attempt to send one message to one endpoint: the delivery log of the console and the API."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    """``delivery`` (the outbox), ``replay`` or ``test``."""
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    succeeded: Mapped[bool] = mapped_column(default=False)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    body_excerpt: Mapped[str] = mapped_column(Text, default="")
    """The first characters of the endpoint's answer (never the transport's own error message)."""
    error: Mapped[str] = mapped_column(Text, default="")


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
