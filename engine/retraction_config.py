"""The ``retraction`` section of the program document: what a retraction does to completions.

Like the document's other domain sections it is a list; it holds at most one entry::

    retraction:
      - completions: keep        # or claw_back (the default)

Stored in the brand's settings (``settings.retraction``); see :class:`engine.retraction.RetractionPolicy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError, NotFound
from engine.orm import BrandRow
from engine.retraction_models import SETTINGS_KEY, RetractionPolicy
from engine.tenants import bump_config_version

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


def parse_section(data: Any, *, path: str) -> RetractionPolicy | None:
    """Validate the section (``[]`` or ``null``: ``None``, the default policy).

    Raises:
        DefinitionError: not a list of at most one policy, or an unknown setting.
    """
    if data is None:
        return None
    if not isinstance(data, list) or len(data) > 1:
        raise DefinitionError("the retraction section is a list of one policy: [{completions: …}]", field=path)
    if not data:
        return None
    try:
        return msgspec.convert(data[0], RetractionPolicy)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        field = f"{path}[0]" + (where.rstrip("`").removeprefix("$") if where else "")
        raise DefinitionError(message, field=field) from exc


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: RetractionPolicy, now: datetime
) -> list[str]:
    """Store the policy in the caller's transaction; answers the change, if any."""
    row = await session.get(BrandRow, brand_id, with_for_update=True)
    if row is None:
        raise NotFound("no such brand", field="brand")
    plain = msgspec.to_builtins(defs)
    if (row.settings or {}).get(SETTINGS_KEY) == plain:
        return []
    row.settings = {**(row.settings or {}), SETTINGS_KEY: plain}
    await session.flush()
    await bump_config_version(session, brand_id)
    return [f"retraction: completions {defs.completions}"]


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The stored policy as the section lists it (nothing when the brand never set one)."""
    row = await session.get(BrandRow, brand_id)
    stored = (row.settings or {}).get(SETTINGS_KEY) if row is not None else None
    return [dict(stored)] if stored else []
