"""Notification tables: the feed (which is also the email queue), members' choices, brands' templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class NotificationRow(Base):
    """One notification to one member: a feed entry, and its email's state.

    ``source`` names what caused it (``o<outbox id>`` or ``r<board>:<period>:<by>:<rank>``); it is unique per
    member, so deriving the feed again from the same messages adds nothing. ``email_state`` is ``pending``
    (due at ``email_due_at``), ``digest`` (waiting for the member's daily digest), ``sent``, ``skipped`` (not
    wanted by email) or ``failed`` (retries exhausted).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id", "source"),
        Index("ix_notifications_feed", "brand_id", "member_id", "id"),
        Index("ix_notifications_email", "email_state", "email_due_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    source: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    email_state: Mapped[str] = mapped_column(String(12), default="pending")
    email_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_error: Mapped[str] = mapped_column(String(200), default="")


class NotificationChoiceRow(Base):
    """A member's email choices: kinds turned off (``email_off``) and daily digest instead of instant mail."""

    __tablename__ = "notification_choices"
    __table_args__ = (PrimaryKeyConstraint("brand_id", "member_id"),)

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    email_off: Mapped[list[str]] = mapped_column(Json, default=list)
    digest: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationTemplateRow(Base):
    """A brand's own email template for one kind (or ``digest``) and locale, overriding the default."""

    __tablename__ = "notification_templates"
    __table_args__ = (PrimaryKeyConstraint("brand_id", "kind", "locale"),)

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class NotificationCursorRow(Base):
    """How far the feed has read the outbox (the highest message id seen)."""

    __tablename__ = "notification_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger, default=0)
