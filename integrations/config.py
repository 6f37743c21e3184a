"""The ``sources:`` section of the program document (see :mod:`integrations.models` for its shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from engine.errors import DefinitionError
from integrations import store
from integrations.errors import from_msgspec
from integrations.models import SourceMapping, SourceSpec
from integrations.orm import SourceMappingRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

SOURCES = ("segment", "cloudevents")


def parse_section(data: Any, *, path: str) -> list[SourceSpec]:
    """Validate the section: a list of source mappings, one per source at most.

    Raises:
        DefinitionError: a bad entry (``field`` is its path) or a source listed twice.
    """
    try:
        specs = msgspec.convert(data or [], list[SourceSpec])
    except msgspec.ValidationError as exc:
        error = from_msgspec(exc, prefix=path)
        raise DefinitionError(error.detail, field=error.field) from exc
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.source in seen:
            raise DefinitionError(f"source {spec.source!r} is listed twice", field=f"{path}[{index}].source")
        seen.add(spec.source)
    return specs


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: list[SourceSpec], now: datetime
) -> list[str]:
    """Make ``defs`` the brand's mappings; a source left out goes back to its defaults."""
    given: dict[str, SourceMapping] = {spec.source: spec.mapping() for spec in defs}
    mappings: dict[str, SourceMapping | None] = {source: given.get(source) for source in SOURCES}
    return await store.put_mappings(session, brand_id=brand_id, mappings=mappings, now=now)


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's mappings as the section lists them."""
    rows = await session.scalars(
        select(SourceMappingRow).where(SourceMappingRow.brand_id == brand_id).order_by(SourceMappingRow.source)
    )
    return [{"source": row.source, **row.spec} for row in rows]
