"""Stored earning rules (engine-owned rows): the earning-rules API and the program document write them here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import delete, select, update

from engine.earning import EarningRule, EarningRuleSpec, build_rule, rule_to_spec
from engine.errors import NotFound
from engine.orm import EarningRuleRow
from engine.tenants import bump_config_version

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId


async def load_rules(session: AsyncSession, brand_id: BrandId) -> tuple[EarningRule, ...]:
    """Every earning rule of the brand, by key."""
    rows = await session.scalars(
        select(EarningRuleRow.spec).where(EarningRuleRow.brand_id == brand_id).order_by(EarningRuleRow.key)
    )
    return tuple(build_rule(msgspec.convert(spec, EarningRuleSpec)) for spec in rows)


async def put_rule(db: Database, *, brand_id: BrandId, spec: EarningRuleSpec, now: datetime) -> EarningRule:
    """Create or replace an earning rule (validated first; nothing changes if it is invalid)."""
    rule = build_rule(spec, path="$")
    plain = msgspec.to_builtins(rule_to_spec(rule))
    async with db.write() as session:
        row = await session.scalar(
            select(EarningRuleRow).where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key == spec.key)
        )
        if row is None:
            session.add(EarningRuleRow(brand_id=brand_id, key=spec.key, spec=plain, updated_at=now))
        else:
            row.spec = plain
            row.updated_at = now
        await bump_config_version(session, brand_id)
    return rule


async def delete_rule(db: Database, *, brand_id: BrandId, key: str) -> None:
    """Remove an earning rule; points already earned stay in the ledger.

    Raises:
        NotFound: no such rule.
    """
    async with db.write() as session:
        result = await session.execute(
            delete(EarningRuleRow).where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key == key)
        )
        if not getattr(result, "rowcount", 0):
            raise NotFound(f"no earning rule {key!r}", field="key")
        await bump_config_version(session, brand_id)


async def earning_rule_specs(session: AsyncSession, *, brand_id: BrandId) -> dict[str, dict[str, Any]]:
    """The brand's stored earning rules (plain specs) by key."""
    rows = await session.execute(
        select(EarningRuleRow.key, EarningRuleRow.spec)
        .where(EarningRuleRow.brand_id == brand_id)
        .order_by(EarningRuleRow.key)
    )
    return {str(key): dict(spec) for key, spec in rows}


async def put_earning_rule(
    session: AsyncSession, *, brand_id: BrandId, key: str, spec: dict[str, Any], exists: bool, now: datetime
) -> None:
    """Create or replace one earning rule's stored spec."""
    if exists:
        await session.execute(
            update(EarningRuleRow)
            .where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key == key)
            .values(spec=spec, updated_at=now)
        )
    else:
        session.add(EarningRuleRow(brand_id=brand_id, key=key, spec=spec, updated_at=now))
        await session.flush()


async def delete_earning_rules(session: AsyncSession, *, brand_id: BrandId, keys: list[str]) -> None:
    """Remove earning rules (points already earned stay in the ledger)."""
    if keys:
        await session.execute(
            delete(EarningRuleRow).where(EarningRuleRow.brand_id == brand_id, EarningRuleRow.key.in_(keys))
        )
