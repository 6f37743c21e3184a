"""Enrolment tables: consents as given (text version and time) and members' erasure requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, UtcDateTime


class ConsentRow(Base):
    """One consent a member gave or refused (terms, marketing), with the text version they saw."""

    __tablename__ = "member_consents"
    __table_args__ = (Index("ix_member_consents_member", "brand_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool] = mapped_column()
    source: Mapped[str] = mapped_column(String(100), default="")
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ErasureRequestRow(Base):
    """A member's request to erase their account, completed from the console."""

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_brand", "brand_id", "completed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(BigId)
    """Kept after erasure (the pseudonymous row stays), not a foreign key."""
    external_id: Mapped[str] = mapped_column(String(255))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
