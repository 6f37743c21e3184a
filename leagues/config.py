"""The ``leagues`` section of the program document: a list of league definitions.

Validated as a whole before anything changes; applying it creates or replaces each league listed (a
league the document leaves out is kept, as boards are). The board a league names is checked when the
league runs: a league whose board is missing or has no fixed periods seats no one (see docs/leagues.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import DefinitionError
from leagues import repository as repo
from leagues.models import LeagueSpec, check_spec

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_LEAGUES = 20


def decode_spec(data: Any, *, path: str) -> LeagueSpec:
    """Plain data → a checked :class:`LeagueSpec`.

    Raises:
        DefinitionError: a wrong shape or inconsistent fields, naming the path.
    """
    try:
        spec = msgspec.convert(data, LeagueSpec, strict=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        field = path + where.rstrip("`").removeprefix("$") if where else path
        raise DefinitionError(message, field=field) from exc
    return check_spec(spec, path=path)


def parse_section(data: Any, *, path: str) -> list[LeagueSpec]:
    """Validate the ``leagues`` section: a list of leagues with distinct keys.

    Raises:
        DefinitionError: not a list, a bad league, or a key used twice.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise DefinitionError("`leagues` is a list of leagues", field=path)
    if len(data) > MAX_LEAGUES:
        raise DefinitionError(f"at most {MAX_LEAGUES} leagues per brand", field=path)
    specs: list[LeagueSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"{path}[{index}]"
        spec = decode_spec(item, path=where)
        if spec.key in seen:
            raise DefinitionError(f"league key {spec.key!r} appears twice", field=f"{where}.key")
        seen.add(spec.key)
        specs.append(spec)
    return specs


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: list[LeagueSpec], now: datetime
) -> list[str]:
    """Create or replace each league; returns what changed, in words."""
    changes: list[str] = []
    for spec in defs:
        outcome = await repo.save_league(session, brand_id=brand_id, spec=spec, now=now)
        if outcome != "unchanged":
            changes.append(f"league {spec.key}: {outcome}")
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's leagues as plain data, in the form :func:`parse_section` reads."""
    return [msgspec.to_builtins(lg.spec) for lg in await repo.load_leagues(session, brand_id=brand_id)]
