"""Tables of the challenges package: campaigns, challenges, member progress, completions, opt-ins, versions.

Definitions are stored as their validated plain spec (JSON) and archived rather than deleted, so a
challenge that comes back keeps its members' progress. Every row carries its brand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.db import Base, BigId, Json, UtcDateTime


class CampaignRow(Base):
    """A campaign of a brand (window, status, eligibility, opt-in) as its plain spec."""

    __tablename__ = "challenge_campaigns"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChallengeRow(Base):
    """A challenge of a brand as its plain spec; ``live_since`` and ``backfilled_from`` drive backfill."""

    __tablename__ = "challenges"
    __table_args__ = (UniqueConstraint("brand_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("challenge_campaigns.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(Json)
    position: Mapped[int] = mapped_column(Integer, default=0)
    live_since: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the challenge first received events (its creation)."""
    backfilled_from: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """The ``backfill_from`` instant the last backfill replayed from (``None``: never backfilled)."""
    archived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MemberStateRow(Base):
    """One member's progress on every challenge of the brand (:class:`challenges.models.MemberState` as JSON).

    One row per member rather than per (member, challenge, instance): a batch of events touching many
    challenges reads and writes one row per member, which is what keeps 50 active challenges cheap.
    """

    __tablename__ = "challenge_member_states"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CompletionRow(Base):
    """One completed instance of a challenge by a member: at most one, by constraint (exactly-once rewards)."""

    __tablename__ = "challenge_completions"
    __table_args__ = (
        UniqueConstraint("challenge_id", "member_id", "instance"),
        Index("ix_challenge_completions_brand_time", "brand_id", "completed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    instance: Mapped[str] = mapped_column(String(16))
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the completing event occurred."""
    event_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


#: Completions answer "how many members completed what, since when"; the name the console's statistics
#: first used for that query (``challenge_id``, ``brand_id``, ``completed_at``) keeps working.
ProgressRow = CompletionRow


class EnrolmentRow(Base):
    """A member's opt-in to a campaign that requires one."""

    __tablename__ = "challenge_enrolments"
    __table_args__ = (UniqueConstraint("campaign_id", "member_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("challenge_campaigns.id", ondelete="CASCADE"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    opted_in_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ProgramVersionRow(Base):
    """One applied version of a brand's whole program document, with what changed."""

    __tablename__ = "program_versions"
    __table_args__ = (UniqueConstraint("brand_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    changes: Mapped[list[str]] = mapped_column(Json)
    source: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
