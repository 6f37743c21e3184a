"""Badges as configuration: the ``badges`` section of a brand's program document (YAML or JSON).

The section is a list of badge objects (the :class:`badges.models.BadgeSpec` fields)::

    badges:
      - key: critic
        name: Critic
        icon: chat
        rule: {event_type: review, filter: {field: properties.stars, gte: 4}}
        levels: [{key: bronze, threshold: 1}, {key: silver, threshold: 10}, {key: gold, threshold: 50}]

:func:`parse_section` validates the whole section first (a mistake is named by its path and nothing is
applied); :func:`apply_section` then upserts inside the caller's transaction. Badges missing from the
section are left as they are: retire one with ``active: false`` (its awards stay valid).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from badges import repository as repo
from badges.models import BadgeDef, BadgeSpec, badge_to_spec, build_badge
from engine.sections import convert_object, parse_list
from engine.tenants import bump_config_version

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_BADGES = 500


def parse_badge(data: Any, *, path: str) -> BadgeDef:
    """Validate one badge object.

    Raises:
        DefinitionError: with ``field`` the path of the first mistake (``path`` + its place inside).
    """
    spec = convert_object(data, BadgeSpec, path=path, noun="badge")
    return build_badge(spec, path=path)


def parse_section(data: Any, *, path: str) -> list[BadgeDef]:
    """Validate the ``badges`` section (a list of badge objects; ``None`` is an empty list).

    Raises:
        DefinitionError: not a list, a bad badge, or a key given twice; ``field`` names where.
    """
    return parse_list(
        data,
        lambda item, where: parse_badge(item, path=where),
        key=lambda badge: badge.key,
        path=path,
        noun="badge",
        plural="badges",
        most=MAX_BADGES,
    )


async def apply_section(session: AsyncSession, *, brand_id: BrandId, defs: list[BadgeDef], now: datetime) -> list[str]:
    """Upsert the badges inside the caller's transaction; returns what changed (``badge critic: created``).

    Bumps the brand's config version when anything changed, so every worker reloads its definitions.
    """
    changes: list[str] = []
    for badge in defs:
        outcome = await repo.upsert_badge(session, brand_id=brand_id, badge=badge, now=now)
        if outcome != "unchanged":
            changes.append(f"badge {badge.key}: {outcome}")
    if changes:
        await bump_config_version(session, brand_id)
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's badges as the plain data :func:`parse_section` accepts (defaults left out)."""
    badges = await repo.load_badges(session, brand_id, with_images=True)
    return [dict(msgspec.to_builtins(badge_to_spec(b))) for b in badges]


async def save_badge(session: AsyncSession, *, brand_id: BrandId, badge: BadgeDef, now: datetime) -> str:
    """Create or replace one badge; returns ``created``, ``updated`` or ``unchanged`` (bumps the config version on change)."""
    outcome = await repo.upsert_badge(session, brand_id=brand_id, badge=badge, now=now)
    if outcome != "unchanged":
        await bump_config_version(session, brand_id)
    return outcome


async def remove_badge(session: AsyncSession, *, brand_id: BrandId, key: str) -> None:
    """Delete a badge nobody was awarded (bumps the config version).

    Raises:
        NotFound: no such badge.
        Conflict: it has awards; deactivate it instead.
    """
    await repo.delete_badge(session, brand_id=brand_id, key=key)
    await bump_config_version(session, brand_id)
