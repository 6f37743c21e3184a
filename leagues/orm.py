"""Tables of leagues: definitions, league periods (the close claim), placements, members' divisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class LeagueRow(Base):
    """A brand's league definition, stored in its validated plain form."""

    __tablename__ = "leagues"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LeaguePeriodRow(Base):
    """One board period of a league: placement locks this row, the close claims it (``closed_at``) once."""

    __tablename__ = "league_periods"
    __table_args__ = (Index("ix_league_periods_open", "closed_at", "closes_at"),)

    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    closes_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    placed: Mapped[int] = mapped_column(Integer, default=0)
    """Members placed so far (also what the placement's locking update writes)."""


class LeaguePlacementRow(Base):
    """A member's seat in one period: division, cohort, join order; rank and zone once the period closed."""

    __tablename__ = "league_placements"
    __table_args__ = (Index("ix_league_placements_cohort", "league_id", "period", "division", "cohort"),)

    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    division: Mapped[str] = mapped_column(String(64))
    cohort: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    """Join order within the period (1 = first placed)."""
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime)
    final_rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_value: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    zone: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``promotion``, ``relegation`` or ``stay`` once the period closed."""


class LeagueMemberRow(Base):
    """The division a member plays in next (changed by each close that promotes or relegates them)."""

    __tablename__ = "league_members"

    league_id: Mapped[int] = mapped_column(ForeignKey("leagues.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    division: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
