"""The ``tiers`` section of the program document: ``{qualification: …, levels: [...]}``.

Validated as a whole before anything changes; applying it replaces the brand's tier program (members'
tiers and history are kept; a member whose tier is no longer defined keeps it until their next review).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError
from tiers import repository as repo
from tiers.models import Qualification, TierProgram, TierSpec, build_program

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId


class TiersSection(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The document form of a tier program."""

    qualification: Qualification = msgspec.field(default_factory=Qualification)
    levels: list[TierSpec] = []


def parse_section(data: Any, *, path: str) -> TierProgram | None:
    """Validate a ``tiers`` section (``null`` or no levels: the brand has no tiers).

    Raises:
        DefinitionError: a wrong shape or an invalid tier, naming its path.
    """
    if data is None:
        return None
    try:
        section = msgspec.convert(data, TiersSection)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        field = path + where.rstrip("`").removeprefix("$") if where else path
        raise DefinitionError(message, field=field) from exc
    if not section.levels:
        return None
    return build_program(TierProgram(qualification=section.qualification, tiers=section.levels), path=path)


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: TierProgram | None, now: datetime
) -> list[str]:
    """Make ``defs`` the brand's tier program; returns the changes made (empty when nothing differs)."""
    current = await repo.load_program(session, brand_id)
    if current == defs:
        return []
    await repo.save_program(session, brand_id=brand_id, program=defs, now=now)
    if defs is None:
        return ["tiers removed"]
    return [f"tiers set: {', '.join(t.key for t in defs.tiers)}"]


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> dict[str, Any] | None:
    """The brand's tier program as a ``tiers`` section (``None`` when it has none)."""
    program = await repo.load_program(session, brand_id)
    if program is None:
        return None
    return {
        "qualification": msgspec.to_builtins(program.qualification),
        "levels": [msgspec.to_builtins(t) for t in program.tiers],
    }
