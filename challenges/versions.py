"""Program versions: every applied program document is recorded, numbered per brand."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, select

from challenges.orm import ProgramVersionRow
from engine.orm import BrandRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId


class ProgramVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded version of the program document."""

    version: int
    changes: list[str]
    source: str
    created_at: datetime


async def lock_program(session: AsyncSession, *, db: Database, brand_id: BrandId) -> None:
    """Serialise definition changes of one brand (PostgreSQL row lock on the brand; SQLite has one writer)."""
    if db.is_postgres:
        await session.execute(select(BrandRow.id).where(BrandRow.id == brand_id).with_for_update())


async def current_version(session: AsyncSession, *, brand_id: BrandId) -> int:
    """The number of the brand's latest program version (0 before the first)."""
    version = await session.scalar(
        select(func.max(ProgramVersionRow.version)).where(ProgramVersionRow.brand_id == brand_id)
    )
    return int(version or 0)


async def record_version(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    document: dict[str, Any],
    changes: list[str],
    source: str,
    now: datetime,
) -> int:
    """Append a program version; returns its number."""
    version = await current_version(session, brand_id=brand_id) + 1
    session.add(
        ProgramVersionRow(
            brand_id=brand_id, version=version, document=document, changes=changes, source=source, created_at=now
        )
    )
    await session.flush()
    return version


async def list_versions(session: AsyncSession, *, brand_id: BrandId, limit: int) -> list[ProgramVersion]:
    """The brand's latest program versions, newest first."""
    rows = await session.execute(
        select(
            ProgramVersionRow.version, ProgramVersionRow.changes, ProgramVersionRow.source, ProgramVersionRow.created_at
        )
        .where(ProgramVersionRow.brand_id == brand_id)
        .order_by(ProgramVersionRow.version.desc())
        .limit(limit)
    )
    return [ProgramVersion(version=v, changes=list(c or []), source=s, created_at=at) for v, c, s, at in rows]


async def version_document(session: AsyncSession, *, brand_id: BrandId, version: int) -> dict[str, Any] | None:
    """The program document recorded as ``version``, if any."""
    document = await session.scalar(
        select(ProgramVersionRow.document).where(
            ProgramVersionRow.brand_id == brand_id, ProgramVersionRow.version == version
        )
    )
    return dict(document) if document is not None else None
