"""Rewards as configuration: the ``rewards`` section of a brand's program document (YAML or JSON).

The section is a list of catalog entries (the :class:`rewards.models.RewardSpec` fields)::

    rewards:
      - key: coffee
        name: {en: Free coffee, it: Caffè gratis}
        cost: 150
        type: voucher
        codes: {source: pattern, pattern: "CAFE-XXXXXX"}
        limit: {count: 1, period: week}

:func:`parse_section` validates the whole section first (a mistake is named by its path, nothing is
applied); :func:`apply_section` then upserts inside the caller's transaction. A reward left out of a
present section leaves the catalog: deleted when it was never redeemed, else paused and hidden (its
redemptions keep their history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from engine.sections import convert_object, parse_list
from rewards import repository as repo
from rewards.models import RewardSpec, build_reward

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_REWARDS = 500


def parse_reward(data: Any, *, path: str) -> RewardSpec:
    """Validate one catalog entry.

    Raises:
        DefinitionError: with ``field`` the path of the first mistake.
    """
    spec = convert_object(data, RewardSpec, path=path, noun="reward")
    build_reward(spec, path=path)
    return spec


def parse_section(data: Any, *, path: str) -> list[RewardSpec]:
    """Validate the ``rewards`` section (a list; ``None`` is an empty catalog).

    Raises:
        DefinitionError: not a list, a bad reward, or a key given twice; ``field`` names where.
    """
    return parse_list(
        data,
        lambda item, where: parse_reward(item, path=where),
        key=lambda spec: spec.key,
        path=path,
        noun="reward",
        plural="rewards",
        most=MAX_REWARDS,
    )


def _compact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v if k == "eligibility" else _compact(v) for k, v in value.items() if v is not None and v != {}}
    return value


def plain(spec: RewardSpec) -> dict[str, Any]:
    """A spec as document data, without empty optional fields (eligibility predicates kept as written)."""
    data: dict[str, Any] = _compact(msgspec.to_builtins(spec))
    return data


async def apply_section(
    session: AsyncSession, *, brand_id: BrandId, defs: list[RewardSpec], now: datetime
) -> list[str]:
    """Make the catalog what the section says (in the caller's transaction); answers the changes made."""
    current = {reward.key: reward.spec for _, reward, _ in await repo.list_rewards(session, brand_id=brand_id)}
    changes: list[str] = []
    for spec in defs:
        before = current.get(spec.key)
        if before is not None and msgspec.to_builtins(before) == msgspec.to_builtins(spec):
            continue
        await repo.upsert_reward(session, brand_id=brand_id, spec=spec, now=now)
        changes.append(f"reward {spec.key}: {'created' if before is None else 'updated'}")
    wanted = {spec.key for spec in defs}
    for key, spec in sorted(current.items()):
        if key in wanted or (spec.paused and not spec.visible):
            continue
        if await repo.redemption_count(session, brand_id=brand_id, key=key):
            retired = msgspec.structs.replace(spec, paused=True, visible=False)
            await repo.upsert_reward(session, brand_id=brand_id, spec=retired, now=now)
            changes.append(f"reward {key}: paused and hidden (it has redemptions)")
        else:
            await repo.delete_reward(session, brand_id=brand_id, key=key)
            changes.append(f"reward {key}: removed")
    return changes


async def export_section(session: AsyncSession, *, brand_id: BrandId) -> list[dict[str, Any]]:
    """The brand's catalog as the section's list, by key."""
    return [plain(reward.spec) for _, reward, _ in await repo.list_rewards(session, brand_id=brand_id)]
