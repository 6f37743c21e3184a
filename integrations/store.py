"""Per-brand source settings and mappings, and the retraction requests refunds leave for the retraction step.

:func:`retract` logs what a source asked to undo in ``pending_retractions`` (once per source request: the
platform's own record of refunds received); the web layer then hands the request to the retraction service
(:mod:`engine.retraction`), which applies it exactly once, at once or when the event arrives.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import select

from engine.db import insert_for
from engine.errors import NotFound
from integrations.models import SourceMapping
from integrations.orm import PendingRetractionRow, SourceMappingRow, SourceRow

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


class SourceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """A platform's settings for a brand (the secret stays inside Questline)."""

    platform: str
    secret: str
    shop_domain: str
    member_key: str
    updated_at: datetime


async def put_source(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    platform: str,
    secret: str,
    shop_domain: str,
    member_key: str,
    now: datetime,
) -> SourceSettings:
    """Create or replace a platform's settings."""
    row = await session.get(SourceRow, (brand_id, platform))
    if row is None:
        row = SourceRow(brand_id=brand_id, platform=platform)
        session.add(row)
    row.secret, row.shop_domain, row.member_key, row.updated_at = secret, shop_domain, member_key, now
    await session.flush()
    return _settings(row)


def _settings(row: SourceRow) -> SourceSettings:
    return SourceSettings(
        platform=row.platform,
        secret=row.secret,
        shop_domain=row.shop_domain,
        member_key=row.member_key,
        updated_at=row.updated_at,
    )


async def get_source(session: AsyncSession, *, brand_id: BrandId, platform: str) -> SourceSettings:
    """A platform's settings.

    Raises:
        NotFound: the brand has not configured this platform.
    """
    row = await session.get(SourceRow, (brand_id, platform))
    if row is None:
        raise NotFound(f"{platform} is not configured for this brand", field="platform")
    return _settings(row)


async def list_sources(session: AsyncSession, *, brand_id: BrandId) -> list[SourceSettings]:
    """Every configured platform of the brand."""
    rows = await session.scalars(select(SourceRow).where(SourceRow.brand_id == brand_id).order_by(SourceRow.platform))
    return [_settings(row) for row in rows]


async def get_mapping(session: AsyncSession, *, brand_id: BrandId, source: str) -> SourceMapping | None:
    """The brand's own mapping for ``source`` (``None``: the defaults alone)."""
    row = await session.get(SourceMappingRow, (brand_id, source))
    return None if row is None else msgspec.convert(row.spec, SourceMapping)


async def put_mappings(
    session: AsyncSession, *, brand_id: BrandId, mappings: dict[str, SourceMapping | None], now: datetime
) -> list[str]:
    """Replace the brand's mappings with ``mappings`` (a ``None`` one is removed); the changes made."""
    changes: list[str] = []
    for source, mapping in mappings.items():
        row = await session.get(SourceMappingRow, (brand_id, source))
        spec = None if mapping is None else cast("dict[str, Any]", msgspec.to_builtins(mapping))
        if spec is None:
            if row is not None:
                await session.delete(row)
                changes.append(f"sources.{source}: back to the defaults")
        elif row is None:
            session.add(SourceMappingRow(brand_id=brand_id, source=source, spec=spec, updated_at=now))
            changes.append(f"sources.{source}: mapping set")
        elif row.spec != spec:
            row.spec, row.updated_at = spec, now
            changes.append(f"sources.{source}: mapping changed")
    await session.flush()
    return changes


async def retract(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    original_event_id: str,
    amount: float | None,
    source: str,
    request_key: str,
    now: datetime,
    by: str = "event_id",
    member: str = "",
) -> bool:
    """Ask for (part of) an event to be retracted; ``amount`` ``None`` is the whole event.

    The request is logged in ``pending_retractions`` once per ``request_key`` (a redelivered refund is not
    stored twice); applying it is :class:`engine.retraction.Retractions`' job (same request key, exactly once).

    Returns:
        Whether the request was new.
    """
    insert = insert_for(session)
    statement = (
        insert(cast("Table", PendingRetractionRow.__table__))
        .values(
            brand_id=brand_id,
            event_key=original_event_id,
            by=by,
            member=member,
            amount=amount,
            source=source,
            request_key=request_key,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["brand_id", "request_key"])
    )
    result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))
