"""The audit log of brand-side changes: who changed what, when, written in the change's own transaction.

``record(session, …)`` adds one row to the session the change is made in, so a change and its audit entry
commit (or roll back) together. ``actor`` says who: ``key:<key prefix>`` for the API, ``admin:<email>``
for the console. ``details`` is a short JSON summary (what changed, never secrets or member data).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, select

from engine.records import AuditRow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId

MAX_PAGE = 200


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One audited change."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the audit log, newest first."""

    entries: list[AuditEntry]
    next_before: int | None
    """Pass as ``before`` for the next (older) page; ``None`` at the end."""


def key_actor(prefix: str) -> str:
    """The actor of a change made with an API key (its non-secret prefix)."""
    return f"key:{prefix}"


def admin_actor(email: str) -> str:
    """The actor of a change made by a console admin."""
    return f"admin:{email}"


async def record(
    session: AsyncSession,
    *,
    brand_id: BrandId | int,
    actor: str,
    action: str,
    at: datetime,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Add an audit entry to ``session``'s transaction (it commits with the change it describes)."""
    session.add(
        AuditRow(
            brand_id=brand_id, at=at, actor=actor[:200], action=action[:64], target=target[:200], details=details or {}
        )
    )
    await session.flush()


async def entries(
    session: AsyncSession,
    *,
    brand_id: BrandId | int,
    limit: int = 50,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> AuditPage:
    """The brand's audit entries, newest first, optionally filtered by action (prefix) and actor (substring)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(AuditRow).where(AuditRow.brand_id == brand_id)
    if before is not None:
        query = query.where(AuditRow.id < before)
    if action:
        query = query.where(AuditRow.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(func.lower(AuditRow.actor).contains(actor.lower(), autoescape=True))
    rows = list((await session.scalars(query.order_by(AuditRow.id.desc()).limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        entries=[
            AuditEntry(id=r.id, at=r.at, actor=r.actor, action=r.action, target=r.target, details=dict(r.details or {}))
            for r in rows
        ],
        next_before=rows[-1].id if more and rows else None,
    )
