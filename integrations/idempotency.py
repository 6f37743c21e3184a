"""The ``Idempotency-Key`` records: claim a key, store the response, replay it (SQL is the source of truth).

A key is scoped to (brand, key, method, path). The first request claims it (``in_flight``) with the SHA-256
fingerprint of its body; when it finishes its response is stored until ``expires_at`` (24 h). Expired
records are deleted when the brand next claims a key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
from sqlalchemy import delete, select, update

from engine.db import insert_for
from engine.ids import BrandId
from integrations.orm import IdempotencyRow

if TYPE_CHECKING:
    from sqlalchemy import Table

    from engine.db import Database

TTL = timedelta(hours=24)


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What a key is unique within."""

    brand_id: BrandId
    key: str
    method: str
    path: str


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """The key is new: run the request."""


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """The key finished with the same body: answer its stored response."""

    status: int
    headers: dict[str, str]
    body: bytes


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """The key was used with another body."""


class InFlight(msgspec.Struct, frozen=True, kw_only=True):
    """The first request with this key is still running."""


Claim = Claimed | Replay | Mismatch | InFlight


def _where(scope: Scope) -> Any:
    return (
        (IdempotencyRow.brand_id == scope.brand_id)
        & (IdempotencyRow.key == scope.key)
        & (IdempotencyRow.method == scope.method)
        & (IdempotencyRow.path == scope.path)
    )


async def claim(db: Database, scope: Scope, *, fingerprint: str, now: datetime) -> Claim:
    """Claim ``scope`` for a request whose body has ``fingerprint``, or say why not."""
    async with db.write() as session:
        await session.execute(
            delete(IdempotencyRow).where(IdempotencyRow.brand_id == scope.brand_id, IdempotencyRow.expires_at <= now)
        )
        insert = insert_for(session)
        statement = (
            insert(cast("Table", IdempotencyRow.__table__))
            .values(
                brand_id=scope.brand_id,
                key=scope.key,
                method=scope.method,
                path=scope.path,
                fingerprint=fingerprint,
                status="in_flight",
                response_headers={},
                created_at=now,
                expires_at=now + TTL,
            )
            .on_conflict_do_nothing(index_elements=["brand_id", "key", "method", "path"])
        )
        result = await session.execute(statement)
        if getattr(result, "rowcount", 0):
            return Claimed()
        row = await session.scalar(select(IdempotencyRow).where(_where(scope)))
    if row is None:  # released between our insert and read: the caller may simply retry
        return InFlight()
    if row.fingerprint != fingerprint:
        return Mismatch()
    if row.status != "done" or row.response_status is None:
        return InFlight()
    return Replay(status=row.response_status, headers=dict(row.response_headers), body=row.response_body or b"")


async def finish(db: Database, scope: Scope, *, status: int, headers: dict[str, str], body: bytes) -> None:
    """Store the response of the request that claimed ``scope``."""
    async with db.write() as session:
        await session.execute(
            update(IdempotencyRow)
            .where(_where(scope))
            .values(status="done", response_status=status, response_headers=headers, response_body=body)
        )


async def release(db: Database, scope: Scope) -> None:
    """Forget the claim (the request failed without a result worth replaying): a retry runs again."""
    async with db.write() as session:
        await session.execute(delete(IdempotencyRow).where(_where(scope)))
