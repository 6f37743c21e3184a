"""Leaderboard tables: definitions, per-period totals (the source of truth), periods, archives, preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class BoardRow(Base):
    """A brand's board definition, stored in its validated plain form."""

    __tablename__ = "leaderboards"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BoardTotalRow(Base):
    """A member's total on one period and scope of a board; Redis is rebuilt from these rows."""

    __tablename__ = "leaderboard_totals"
    __table_args__ = (
        UniqueConstraint("board_id", "period", "scope", "member_id"),
        Index("ix_leaderboard_totals_member", "brand_id", "member_id"),
        Index("ix_leaderboard_totals_updated", "brand_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(100), default="")
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    units: Mapped[int] = mapped_column(BigInteger)
    """The score in units of 10^-decimals (exact)."""
    reached_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the member reached this score (event time): the first-to-reach tie-break."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BoardPeriodRow(Base):
    """A period of a board that has totals; closing it (once: ``closed_at``) archives it and pays rewards."""

    __tablename__ = "leaderboard_periods"
    __table_args__ = (
        UniqueConstraint("board_id", "period"),
        Index("ix_leaderboard_periods_open", "closed_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    members: Mapped[int] = mapped_column(Integer, default=0)
    """How many standings the archive holds (all scopes)."""


class BoardArchiveRow(Base):
    """A closed period's final standings: one row per member and scope, ranked."""

    __tablename__ = "leaderboard_archive"
    __table_args__ = (
        UniqueConstraint("board_id", "period", "scope", "member_id"),
        Index("ix_leaderboard_archive_position", "board_id", "period", "scope", "position"),
        Index("ix_leaderboard_archive_member", "brand_id", "member_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    board_id: Mapped[int] = mapped_column(ForeignKey("leaderboards.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(100), default="")
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    rank: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(BigInteger)
    reached_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BoardPreferenceRow(Base):
    """How a member wants to appear on boards (opt out of public boards, initials, pseudonym)."""

    __tablename__ = "leaderboard_preferences"
    __table_args__ = (UniqueConstraint("brand_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    display: Mapped[str] = mapped_column(String(16), default="")
    pseudonym: Mapped[str] = mapped_column(String(40), default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
