"""The ``segments`` section of the program document: a list of segment definitions.

Validated as a whole before anything changes; applying it makes the listed segments the brand's segments
(one left out is deleted: an offer or a filter naming it then matches nobody).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError
from segments import repository as repo
from segments.models import MAX_SEGMENTS, SegmentDef, validate

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


def convert(data: Any, cls: type[Any], *, path: str) -> Any:
    """``msgspec.convert`` with the error's location turned into a document path."""
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        field = path + where.rstrip("`").removeprefix("$") if where else path
        raise DefinitionError(message, field=field) from exc


def parse_section(data: Any, *, path: str) -> list[SegmentDef]:
    """Validate a ``segments`` section (``null``: none).

    Raises:
        DefinitionError: a wrong shape, a duplicate slug or an invalid clause, naming its path.
    """
    items = convert(data or [], list[SegmentDef], path=path)
    if len(items) > MAX_SEGMENTS:
        raise DefinitionError(f"at most {MAX_SEGMENTS} segments", field=path)
    seen: set[str] = set()
    for index, segment in enumerate(items):
        if segment.slug in seen:
            raise DefinitionError(f"segment {segment.slug!r} is defined twice", field=f"{path}[{index}].slug")
        seen.add(segment.slug)
        validate(segment, path=f"{path}[{index}]")
    return list(items)


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: list[SegmentDef], now: datetime
) -> list[str]:
    """Make ``defs`` the brand's segments; returns the changes made."""
    current = {s.slug: s for s in await repo.load_segments(session, brand_id)}
    changes: list[str] = []
    for segment in defs:
        if current.get(segment.slug) != segment:
            await repo.save_segment(session, brand_id=brand_id, segment=segment, now=now)
            changes.append(f"segment {segment.slug} {'updated' if segment.slug in current else 'created'}")
    for slug in sorted(set(current) - {s.slug for s in defs}):
        await repo.delete_segment(session, brand_id=brand_id, slug=slug)
        changes.append(f"segment {slug} deleted")
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's segments as a ``segments`` section."""
    return [msgspec.to_builtins(s) for s in await repo.load_segments(session, brand_id)]
