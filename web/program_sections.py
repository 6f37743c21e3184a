"""The sections of the program document: which keys each owns and how it is parsed, applied and exported.

Questline's own sections (earning rules, limits, campaigns and challenges, points, tiers) are listed here;
a domain package joins by providing a ``config`` module with ``parse_section(data, *, path)``,
``async apply_section(session, *, brand_id, defs, now)`` and ``async export_section(session, *, brand_id)``
and one line in :data:`DOMAIN_SECTIONS`. :mod:`web.program` reads, validates, applies and exports whole
documents with them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy.ext.asyncio import AsyncSession

from challenges import service
from challenges.config import parse_campaigns, parse_challenges
from engine import velocity
from engine.tenants import Brand
from tiers import config as tiers_config
from web.program_points import apply_points, export_points, parse_points


class _Apply(Protocol):
    def __call__(self, session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> Awaitable[list[str]]: ...


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the program document."""

    keys: tuple[str, ...]
    parse: Callable[[Mapping[str, Any]], Any]
    """Validate the section's keys present in the document (a mapping of key → raw data); raise on a mistake."""
    apply: _Apply
    export: Callable[[AsyncSession, Brand], Awaitable[dict[str, Any]]]


# --- the sections Questline ships --------------------------------------------------------------------


def _parse_earning_rules(data: Mapping[str, Any]) -> Any:
    return service.parse_earning_rules(data["earning_rules"] or [], path="$.earning_rules")


async def _apply_earning_rules(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
    return await service.apply_earning_rules(session, brand=brand, specs=defs, now=now)


async def _export_earning_rules(session: AsyncSession, brand: Brand) -> dict[str, list[dict[str, Any]]]:
    return {"earning_rules": await service.export_earning_rules(session, brand_id=brand.id)}


def _parse_challenges(data: Mapping[str, Any]) -> Any:
    campaigns = parse_campaigns(data["campaigns"] or [], path="$.campaigns") if "campaigns" in data else None
    challenges = parse_challenges(data["challenges"] or [], path="$.challenges") if "challenges" in data else None
    return campaigns, challenges


async def _apply_challenges(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
    campaigns, challenges = defs
    return await service.apply_definitions(session, brand=brand, campaigns=campaigns, challenges=challenges, now=now)


async def _export_challenges(session: AsyncSession, brand: Brand) -> dict[str, list[dict[str, Any]]]:
    campaigns, challenges = await service.export_definitions(session, brand_id=brand.id)
    return {"campaigns": campaigns, "challenges": challenges}


def _parse_limits(data: Mapping[str, Any]) -> Any:
    return velocity.parse_limits(data["limits"], path="$.limits")


async def _apply_limits(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
    return await velocity.apply_limits(session, brand_id=brand.id, limits=defs)


async def _export_limits(session: AsyncSession, brand: Brand) -> dict[str, list[dict[str, Any]]]:
    return {"limits": await velocity.export_limits(session, brand_id=brand.id)}


def domain_section(name: str, module_name: str) -> Section | None:
    """A section backed by a domain package's ``config`` module, or ``None`` when it does not provide one."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, module_name.rpartition(".")[0]):
            return None
        raise
    parse_section = getattr(module, "parse_section", None)
    apply_section = getattr(module, "apply_section", None)
    export_section = getattr(module, "export_section", None)
    if parse_section is None or apply_section is None or export_section is None:
        return None

    def parse(data: Mapping[str, Any]) -> Any:
        return parse_section(data[name], path=f"$.{name}")

    async def apply(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
        changes: list[str] = await apply_section(session, brand_id=brand.id, defs=defs, now=now)
        return changes

    async def export(session: AsyncSession, brand: Brand) -> dict[str, Any]:
        return {name: list(await export_section(session, brand_id=brand.id))}

    return Section(keys=(name,), parse=parse, apply=apply, export=export)


def _parse_tiers(data: Mapping[str, Any]) -> Any:
    return tiers_config.parse_section(data["tiers"], path="$.tiers")


async def _apply_tiers(session: AsyncSession, brand: Brand, defs: Any, now: datetime) -> list[str]:
    return await tiers_config.apply_section(session, brand_id=brand.id, defs=defs, now=now)


async def _export_tiers(session: AsyncSession, brand: Brand) -> dict[str, list[dict[str, Any]]]:
    # The ``tiers`` section is an object ({qualification, levels}), not a list like the others.
    section = await tiers_config.export_section(session, brand_id=brand.id)
    return cast("dict[str, list[dict[str, Any]]]", {"tiers": section} if section is not None else {})


#: Domain packages' sections, in apply order (after earning rules and challenges: a challenge's reward names a
#: badge key, and boards total what the others award).
DOMAIN_SECTIONS = (
    ("badges", "badges.config"),
    ("leaderboards", "leaderboards.config"),
    ("sources", "integrations.config"),
    ("rewards", "rewards.config"),
    ("segments", "segments.config"),
    ("offers", "segments.offer_config"),
    ("retraction", "engine.retraction_config"),
    ("leagues", "leagues.config"),
)


@functools.cache
def sections() -> tuple[Section, ...]:
    """Every section this installation knows, in apply order."""
    found = [
        Section(
            keys=("earning_rules",),
            parse=_parse_earning_rules,
            apply=_apply_earning_rules,
            export=_export_earning_rules,
        ),
        Section(keys=("limits",), parse=_parse_limits, apply=_apply_limits, export=_export_limits),
        Section(
            keys=("campaigns", "challenges"),
            parse=_parse_challenges,
            apply=_apply_challenges,
            export=_export_challenges,
        ),
        Section(keys=("points",), parse=parse_points, apply=apply_points, export=export_points),
    ]
    for name, module_name in DOMAIN_SECTIONS:
        section = domain_section(name, module_name)
        if section is not None:
            found.append(section)
    found.append(Section(keys=("tiers",), parse=_parse_tiers, apply=_apply_tiers, export=_export_tiers))
    return tuple(found)
