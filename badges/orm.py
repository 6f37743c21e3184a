"""Tables of the ``badges`` package: definitions, awards (unique per member, badge, level and instance), counters.

Exactly once is the awards table's unique key ``(brand_id, member_id, badge_key, level, instance)``:
``instance`` is empty for a non-repeatable badge (so a second award of it, or of one of its levels, cannot
exist, whatever races or retries happen) and names the source instance for a repeatable one (the rule's
ordinal, the challenge instance, the board period, the manual grant's reference).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class BadgeDefinitionRow(Base):
    """A brand's badge, stored in its validated plain form; the uploaded image apart (loaded only to serve it)."""

    __tablename__ = "badge_definitions"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    """The :class:`badges.models.BadgeSpec` without its image."""
    image: Mapped[str] = mapped_column(Text, default="")
    """The uploaded image as a data URI, or empty for generated art."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BadgeAwardRow(Base):
    """One award of a badge (or of one level of it) to a member; revocation keeps the row."""

    __tablename__ = "badge_awards"
    __table_args__ = (
        UniqueConstraint("brand_id", "member_id", "badge_key", "level", "instance"),
        Index("ix_badge_awards_badge", "brand_id", "badge_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    """Public, unguessable id used by the hosted Open Badges URLs."""
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    badge_key: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(32), default="")
    instance: Mapped[str] = mapped_column(String(320), default="")
    source: Mapped[str] = mapped_column(String(16))
    source_ref: Mapped[str] = mapped_column(String(300), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    points: Mapped[int] = mapped_column(BigId, default=0)
    event_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    awarded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revocation_reason: Mapped[str] = mapped_column(Text, default="")
    recipient_type: Mapped[str] = mapped_column(String(16))
    recipient_hash: Mapped[str] = mapped_column(String(80))
    """``sha256$…`` of the recipient identity and :attr:`salt`; the identity itself is never stored here."""
    salt: Mapped[str] = mapped_column(String(32))


class BadgeCounterRow(Base):
    """A member's count of events matching a badge's direct rule (written as absolute values)."""

    __tablename__ = "badge_counters"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    badge_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
